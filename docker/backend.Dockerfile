# The FastAPI backend. Built by scripts/build-images.sh from a staged context holding
# pyproject.toml, README.md, backend/, bentos/ and docker/backend-requirements.txt, plus wheels/
# when building offline (no registry: pip installs only from that wheelhouse).
#   BASE_IMAGE: any Debian-like image with Python 3.11 and venv (python:3.11-slim by default;
#   scripts/container-base.sh makes localhost/circle-base:bookworm where no registry is reachable).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
# WHEELS: a folder of the context holding every requirement as a wheel; set: install offline
# from it only (scripts/build-images.sh --offline), empty: install from the package index.
ARG WHEELS=

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

COPY . /src
RUN set -eu; \
    if [ -n "$WHEELS" ]; then pip_src="--no-index --find-links /src/$WHEELS"; else pip_src=""; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir $pip_src -r /src/docker/backend-requirements.txt; \
    /opt/venv/bin/pip install --no-cache-dir --no-deps $pip_src /src; \
    rm -rf /src; \
    groupadd --gid 10001 app; \
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /data --shell /usr/sbin/nologin app; \
    mkdir -p /data; chown 10001:10001 /data

# Listen on every interface inside the container; SQLite and uploads under the data volume.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data
USER 10001:10001
WORKDIR /data
EXPOSE 8000
CMD ["python", "-m", "backend"]
