#!/usr/bin/env bash
# Build the Bento's and the backend's images, and optionally load them into the kind cluster.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ROOT="$(repo_root)"
IMAGE_REGISTRY="${IMAGE_REGISTRY:-dev.local/circle-detector}"
IMAGE_TAG="${IMAGE_TAG:-$(project_version)}"
BENTO_IMAGE="${BENTO_IMAGE:-$IMAGE_REGISTRY/bento:$IMAGE_TAG}"
BACKEND_IMAGE="${BACKEND_IMAGE:-$IMAGE_REGISTRY/backend:$IMAGE_TAG}"
BENTO_TAG="${BENTO_TAG:-circle-detector:latest}"
KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-circle-detector}"
BASE_IMAGE="${BASE_IMAGE:-}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/images}"
export BENTOML_HOME="${BENTOML_HOME:-$ROOT/.bentoml}"

usage() {
  cat <<USAGE
Usage: scripts/build-images.sh [--engine docker|podman|buildah] [--offline | --local-base]
                               [--only bento|backend] [--kind-load] [--print-images] [--help]

Builds two images:
  the Bento    ${BENTO_IMAGE}
               circle-detector import-model + bentoml build, then 'bentoml containerize'
               (or, with --offline, docker/bento.Dockerfile on the built Bento and a wheelhouse)
  the backend  ${BACKEND_IMAGE}
               docker/backend.Dockerfile on a staged context (pyproject, backend/, bentos/)

  --engine E      docker (default when on PATH), podman or buildah (--isolation chroot)
  --offline       no registry: base image from scripts/container-base.sh, every Python
                  package from a wheelhouse built here first (pip wheel), nothing pulled
  --local-base    no registry, but a package index: the real 'bentoml containerize' on the
                  base image of scripts/container-base.sh (build argument BASE_IMAGE of
                  docker/bento.containerize.j2); the packages come from the index, with this
                  machine's CA bundle (SSL_CERT_FILE/PIP_CERT, mounted for the build only) and
                  pip's index settings passed on (podman/buildah)
  --only X        build only the bento or only the backend image
  --kind-load     then load both into the kind cluster '${KIND_CLUSTER_NAME}'
                  (docker: kind load docker-image; podman/buildah: an image archive)
  --print-images  print the two image references and exit (the k8s/overlays/local images)

Why dev.local/: Knative Serving resolves every image tag to a digest by asking the image's
registry, and a revision fails when it cannot; registries named in config-deployment's
registries-skipping-tag-resolving (default: kind.local, ko.local, dev.local) are skipped. Images
loaded with 'kind load' exist only on the nodes, so they live under dev.local/ with a fixed tag
(not latest) and imagePullPolicy IfNotPresent: nothing is ever pulled.

Environment (defaults):
  IMAGE_REGISTRY     ${IMAGE_REGISTRY}
  IMAGE_TAG          ${IMAGE_TAG} (pyproject.toml's version)
  BENTO_IMAGE        ${BENTO_IMAGE}
  BACKEND_IMAGE      ${BACKEND_IMAGE}
  BENTO_TAG          ${BENTO_TAG} (the Bento to containerize)
  BENTOML_HOME       ${BENTOML_HOME}
  BASE_IMAGE         python:3.11-slim online, localhost/circle-base:bookworm with --offline
  BUILD_DIR          ${BUILD_DIR} (staged contexts and wheelhouses, reused between runs)
  KIND_CLUSTER_NAME  ${KIND_CLUSTER_NAME}
USAGE
}

engine="" offline=0 only="" kind_load=0 local_base=0
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --print-images) printf '%s\n%s\n' "$BENTO_IMAGE" "$BACKEND_IMAGE"; exit 0 ;;
    --engine) engine="${2:?--engine needs a value}"; shift 2 ;;
    --offline) offline=1; shift ;;
    --local-base) local_base=1; shift ;;
    --only) only="${2:?--only needs a value}"; shift 2 ;;
    --kind-load) kind_load=1; shift ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ -z "$only" || "$only" == bento || "$only" == backend ]] || die "--only takes bento or backend"
if [[ -z "$engine" ]]; then
  if command -v docker >/dev/null 2>&1; then engine=docker; else engine=buildah; fi
fi
case "$engine" in
  docker | podman | buildah) need "$engine" ;;
  *) die "unknown engine '$engine' (docker, podman or buildah)" ;;
esac
((kind_load)) && need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
((offline && local_base)) && die "--offline or --local-base, not both"
if ((offline || local_base)); then
  BASE_IMAGE="${BASE_IMAGE:-localhost/circle-base:bookworm}"
  [[ "$engine" != docker ]] || die "--offline builds with podman or buildah (local base image)"
  podman image exists "$BASE_IMAGE" 2>/dev/null ||
    die "base image $BASE_IMAGE missing: run scripts/container-base.sh first"
else
  BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim}"
fi
PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || die "no virtualenv at $ROOT/.venv (run 'make setup' first)"

# build_image DOCKERFILE CONTEXT IMAGE [BUILD-OPTIONS...]: one image with the chosen engine.
build_image() {
  local args=(-f "$1" -t "$3" --build-arg "BASE_IMAGE=$BASE_IMAGE" "${@:4}") pull=()
  ((offline)) && pull=(--pull-never)
  case "$engine" in
    buildah) buildah bud --isolation chroot --layers "${pull[@]}" "${args[@]}" "$2" ;;
    podman) podman build --isolation chroot "${pull[@]}" "${args[@]}" "$2" ;;
    docker) docker build "${args[@]}" "$2" ;;
  esac
}

# wheelhouse DIR REQUIREMENTS...: every requirement as a wheel (pip's own config finds torch's CPU
# wheel on disk here). Index lines are dropped: offline means PyPI only through this machine's pip.
wheelhouse() {
  local dir="$1"
  shift
  mkdir -p "$dir"
  log "wheelhouse $dir"
  "$PY" -m pip wheel --quiet --wheel-dir "$dir" "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
}

build_bento() {
  log "importing the model and building the Bento ($BENTO_TAG)"
  # The import-model command's function, so that an unrelated sub-command cannot break the build.
  "$PY" -c 'from bentos.circle_detector.commands.import_model import import_model as m; print(*m())'
  (cd "$ROOT" && "$ROOT/.venv/bin/bentoml" build --output tag >/dev/null)
  if ((offline)); then
    local src ctx="$BUILD_DIR/bento"
    src="$("$ROOT/.venv/bin/bentoml" get "$BENTO_TAG" -o path)"
    [[ -f "$src/bento.yaml" ]] || die "bentoml get $BENTO_TAG gave no Bento directory ($src)"
    rm -rf "$ctx/bento" "$ctx/models" && mkdir -p "$ctx/models" && cp -a "$src" "$ctx/bento"
    # A built Bento references its models; containerize adds them from the model store, so here.
    local tag
    for tag in $("$PY" -c 'import sys, yaml
b = yaml.safe_load(open(sys.argv[1]))
print(*{m["tag"] for s in b.get("services", []) for m in s.get("models", [])})' "$ctx/bento/bento.yaml"); do
      mkdir -p "$ctx/models/${tag%%:*}"
      cp -a "$BENTOML_HOME/models/${tag%%:*}/${tag#*:}" "$ctx/models/${tag%%:*}/"
      printf '%s' "${tag#*:}" >"$ctx/models/${tag%%:*}/latest"
    done
    grep -vE '^\s*-{1,2}(extra-)?index-url' "$ctx/bento/env/python/requirements.txt" \
      >"$ctx/requirements.offline.txt"
    wheelhouse "$ctx/wheels" -r "$ctx/requirements.offline.txt"
    build_image "$ROOT/docker/bento.Dockerfile" "$ctx" "$BENTO_IMAGE"
  else
    containerize
  fi
}

# containerize: `bentoml containerize` with the base image as a build argument and, for podman and
# buildah, this machine's CA bundle and package index carried into the build (not the image).
containerize() {
  local opts=(--opt "build-arg=BASE_IMAGE=$BASE_IMAGE") ca="${SSL_CERT_FILE:-${PIP_CERT:-}}" url
  if [[ "$engine" != docker ]]; then
    opts+=(--opt isolation=chroot)
    if [[ -n "$ca" && -f "$ca" ]]; then
      opts+=(--opt "volume=$ca:/run/host-ca/ca-certificates.crt:ro")
      for var in SSL_CERT_FILE PIP_CERT; do
        opts+=(--opt "build-arg=$var=/run/host-ca/ca-certificates.crt")
      done
    fi
    # pip's index (uv, which installs the Bento's requirements, reads UV_INDEX_URL); file://
    # indexes are this machine's disk, not the build's: left out.
    url="$("$PY" -m pip config get global.index-url 2>/dev/null || true)"
    url="${PIP_INDEX_URL:-$url}"
    if [[ "$url" == http* ]]; then
      opts+=(--opt "build-arg=PIP_INDEX_URL=$url" --opt "build-arg=UV_INDEX_URL=$url")
    fi
  fi
  # BentoML 1.4.38 renders the dockerfile_template from a temporary copy of the Bento and
  # refuses any file outside the working directory ("Accessing file outside of current working
  # directory is not allowed: /tmp/tmp.../env/docker/Dockerfile.template"): run it from there.
  (cd "$("$PY" -c 'import tempfile; print(tempfile.gettempdir())')" &&
    "$ROOT/.venv/bin/bentoml" containerize "$BENTO_TAG" --backend "$engine" \
      --image-tag "$BENTO_IMAGE" "${opts[@]}")
}

build_backend() {
  local ctx="$BUILD_DIR/backend"
  log "staging the backend's context in $ctx"
  rm -rf "$ctx/src" && mkdir -p "$ctx/src/docker"
  cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$ctx/src/"
  cp "$ROOT/docker/backend-requirements.txt" "$ctx/src/docker/"
  (cd "$ROOT" && tar --exclude=__pycache__ -cf - backend bentos) | tar -C "$ctx/src" -xf -
  if ((offline)); then
    wheelhouse "$ctx/wheels" -r "$ROOT/docker/backend-requirements.txt" setuptools wheel
    "$PY" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$ctx/wheels" "$ctx/src" \
      2>&1 | { grep -v '^WARNING: Location' || true; }
    cp -a "$ctx/wheels" "$ctx/src/wheels"
  fi
  local extra=()
  ((offline)) && extra=(--build-arg WHEELS=wheels)
  build_image "$ROOT/docker/backend.Dockerfile" "$ctx/src" "$BACKEND_IMAGE" "${extra[@]}"
}

# load_into_kind IMAGE: docker images directly, podman/buildah through an archive.
load_into_kind() {
  kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME" ||
    die "no kind cluster '$KIND_CLUSTER_NAME': run scripts/kind-up.sh first"
  if [[ "$engine" == docker ]]; then
    kind load docker-image "$1" --name "$KIND_CLUSTER_NAME"
  else
    local archive
    archive="$BUILD_DIR/$(basename "${1%%:*}").tar"
    rm -f "$archive"
    if [[ "$engine" == podman ]]; then podman save --format docker-archive -o "$archive" "$1"
    else buildah push "$1" "docker-archive:$archive:$1"; fi
    kind load image-archive "$archive" --name "$KIND_CLUSTER_NAME"
  fi
}

start=$SECONDS
[[ "$only" == backend ]] || build_bento
[[ "$only" == bento ]] || build_backend
if ((kind_load)); then
  [[ "$only" == backend ]] || load_into_kind "$BENTO_IMAGE"
  [[ "$only" == bento ]] || load_into_kind "$BACKEND_IMAGE"
fi
log "built in $((SECONDS - start)) s: $([[ "$only" == backend ]] || echo "$BENTO_IMAGE") $([[ "$only" == bento ]] || echo "$BACKEND_IMAGE")"
