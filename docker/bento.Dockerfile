# The Bento, built offline from the `bentoml build` output (scripts/build-images.sh --offline):
# the staged context holds bento/ (the built Bento: src/, env/python/requirements.txt, bento.yaml),
# models/ (the model-store entries it names) and wheels/ (every requirement as a wheel; no torch:
# the Bento serves the ONNX network with ONNX Runtime). With a registry at hand,
# `bentoml containerize` builds the equivalent image instead (docker/bento.containerize.j2).
#   BASE_IMAGE: python:3.11-slim by default; localhost/circle-base:bookworm where no registry is
#   reachable (scripts/container-base.sh).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    BENTOML_HOME=/home/bentoml \
    BENTO_PATH=/home/bentoml/bento \
    PYTHONPATH=/home/bentoml/bento/src

# The wheelhouse is bind-mounted, not copied: a COPY layer would keep its 150 MB in the image
# even after the install removed it. A server needs neither the installers (pip, setuptools),
# nor the packages' own test suites, nor ONNX Runtime's model-tuning tools (which inference
# never imports): about 40 MB together.
RUN --mount=type=bind,source=wheels,target=/tmp/wheels \
    --mount=type=bind,source=bento/env/python/requirements.txt,target=/tmp/requirements.txt \
    set -eu; \
    python3 -m venv /opt/venv; \
    grep -vE '^\s*-{1,2}(extra-)?index-url' /tmp/requirements.txt > /tmp/requirements.offline.txt; \
    /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels \
      -r /tmp/requirements.offline.txt; \
    /opt/venv/bin/pip uninstall --yes --quiet pip setuptools; \
    find /opt/venv/lib/python3.11/site-packages -depth -type d -name tests -exec rm -rf {} +; \
    rm -rf /opt/venv/lib/python3.11/site-packages/onnxruntime/transformers \
      /opt/venv/lib/python3.11/site-packages/onnxruntime/quantization \
      /opt/venv/lib/python3.11/site-packages/onnxruntime/tools; \
    rm -f /tmp/requirements.offline.txt; \
    groupadd --gid 1034 bentoml; \
    useradd --uid 1034 --gid 1034 --create-home --home-dir /home/bentoml --shell /usr/sbin/nologin bentoml

# BentoML's own layout and user (uid 1034), so that this image and a `bentoml containerize` one
# run under the same InferenceService securityContext.
COPY --chown=1034:1034 models /home/bentoml/models
COPY --chown=1034:1034 bento /home/bentoml/bento
# The service's bytecode compiled at build time (pip did the packages'): with a non-root user and
# no writable source tree, every cold start would compile it again.
RUN python3 -m compileall -q /home/bentoml/bento/src
USER 1034:1034
WORKDIR /home/bentoml/bento
# Knative sets PORT (8080 in KServe); the server reads it. gRPC listens on 8081.
ENV PORT=8080
EXPOSE 8080 8081
# The single-process launcher: the same V2 app, batcher and gRPC server as `bentoml serve`,
# without its supervisor and a second import of everything (measured in benchmarks/RESULTS.md).
# An ENTRYPOINT, not a CMD: KServe's ClusterServingRuntime (k8s/runtime/) gives only `args`
# (--model_name=... --model_dir=/mnt/models --http_port=8080), which Kubernetes passes to the
# entrypoint but would run instead of a CMD. `--entrypoint bentoml` + `serve /home/bentoml/bento`
# still works in this image.
ENTRYPOINT ["python", "-m", "bentos.circle_detector.standalone"]
CMD []
