#!/usr/bin/env bash
# Build the Bento's and the backend's images for real (buildah, offline) and test them with podman.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ROOT="$(repo_root)"
POD="${CONTAINER_POD:-circle-detector-test}"
RUNTIME="${CONTAINER_RUNTIME:-runc}"
# 1: also build the Bento with the real `bentoml containerize` (needs a package index) and test it.
CONTAINERIZE="${CONTAINERIZE:-1}"
READY_TIMEOUT_S="${READY_TIMEOUT_S:-180}"
KEEP="${KEEP_CONTAINERS:-0}"

usage() {
  cat <<USAGE
Usage: scripts/container-test.sh [--skip-build] [--help]

The container, for real, with the tools that work without a Docker engine or a registry:
  1. scripts/container-base.sh: a Debian base image made with debootstrap (skipped if present)
  2. scripts/build-images.sh --engine buildah --offline: both images (buildah, chroot isolation,
     every package from a local wheelhouse)
  3. one podman pod on 127.0.0.1 (free ports), like a Kubernetes pod: the Bento with PORT=8080
     as Knative sets it, and the backend (read-only root, /data volume, MODEL_SERVER_URL
     127.0.0.1:8080)
     (the Bento's env, user and command read from the rendered k8s/overlays/local --with
     custom-container: the model in the image)
  4. the Bento's own V2 client tests (tritonclient HTTP + gRPC, REST error cases) against the
     Bento's container, and tests/k8s/container_checks.py against the backend's container
     (/health/ready, an upload detected through the Bento)
  5. scripts/smoke-test.sh local against the pod, with a fake kubectl whose port-forwards are
     Host-header routers in place of Knative's local gateway (the model's host to the Bento)
     and the Istio ingress gateway (the backend) (tests/k8s/fake_cluster); smoke-test.sh stops
     them when it ends
  6. the gRPC variant (--with grpc) as Knative runs it: PORT=8081 (h2c), the manifest's command,
     and the Bento's gRPC tests against that port
  7. the KServe runtime form (k8s/overlays/local as is): the ClusterServingRuntime's container
     started as KServe starts it (--model_name=circle-detector --model_dir=/mnt/models
     --http_port=8080, PORT=8080, uid 1034), the exported model (circle_detector.onnx + .json)
     mounted read-only at /mnt/models, and the V2 REST + gRPC tests against it (skipped, with
     the reason, while the launcher lacks KServe's options)
  8. (CONTAINERIZE=1) the Bento image again with the real 'bentoml containerize --backend buildah'
     (scripts/build-images.sh --local-base: the local base image, this machine's CA bundle and
     package index; Python packages from the index), run as the custom container and, with
     KServe's options, as the runtime, and the same V2 REST + gRPC tests against it
Prints how long each step took. Not part of 'make test' (minutes, needs root). Installs podman,
buildah, runc and debootstrap with apt-get when they are missing.

  --skip-build   use the images already built

Environment (defaults):
  CONTAINER_POD      ${POD}
  CONTAINER_RUNTIME  ${RUNTIME} (OCI runtime for podman)
  READY_TIMEOUT_S    ${READY_TIMEOUT_S} (wait for each container)
  KEEP_CONTAINERS    ${KEEP} (1: leave the pod running afterwards)
  CONTAINERIZE       ${CONTAINERIZE} (0: skip step 8, e.g. with no package index reachable)
  and those of scripts/build-images.sh (image names, BUILD_DIR)
USAGE
}

skip_build=0
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --skip-build) skip_build=1 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done
[[ $(id -u) -eq 0 ]] || die "buildah/podman here run as root"
# On a bare machine: the container tools from the distribution, as scripts/test-deps.sh does for
# make test (curl for the readiness waits).
ensure_tools podman=podman buildah=buildah "$RUNTIME=$RUNTIME" debootstrap=debootstrap curl=curl
PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || die "no virtualenv at $ROOT/.venv (run 'make setup' first)"
cd "$ROOT"

# podman's defaults raise RLIMIT_NPROC/NOFILE, which this sandbox forbids: keep them at most
# at the current hard limits, and use runc (crun refuses hybrid cgroups here).
conf="$(mktemp)"
nofile="$(ulimit -Hn)"
[[ "$nofile" == unlimited ]] && nofile=1048576
cat >"$conf" <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=8192:8192"]
[engine]
runtime = "${RUNTIME}"
CONF
export CONTAINERS_CONF="$conf"

read -r BENTO_IMAGE BACKEND_IMAGE < <("$ROOT/scripts/build-images.sh" --print-images | paste -sd' ')
data="$(mktemp -d)"
# What `circle-detector export` writes (the committed export), as KServe's pvc:// mount holds it.
models="$data/models"
# Whatever happens (a failure, Ctrl-C, SIGTERM), the pods go and nothing started here stays.
cleanup() {
  stop_bg
  if [[ "$KEEP" != 1 ]]; then
    # One at a time: podman 4.3 removes none of the named pods when one of them does not exist
    # (and still exits 0).
    local pod
    for pod in "$POD" "$POD-grpc" "$POD-kserve" "$POD-cz"; do
      podman pod exists "$pod" 2>/dev/null && podman pod rm -f "$pod" >/dev/null 2>&1
    done
    podman pod exists "$POD" 2>/dev/null && log "warning: pod $POD is still there"
    rm -rf "$data"
  fi
  rm -f "$conf"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

declare -A took
step() { # step NAME COMMAND...: run and time one step
  local name="$1" t0=$SECONDS
  shift
  log "== $name"
  "$@"
  took[$name]=$((SECONDS - t0))
}

if ((skip_build == 0)); then
  step base-image "$ROOT/scripts/container-base.sh"
  step bento-image "$ROOT/scripts/build-images.sh" --engine buildah --offline --only bento
  step backend-image "$ROOT/scripts/build-images.sh" --engine buildah --offline --only backend
fi
for image in "$BENTO_IMAGE" "$BACKEND_IMAGE"; do
  podman image exists "$image" || die "image $image missing (run without --skip-build)"
done

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port="$(free_port)" grpc_port="$(free_port)" backend_port="$(free_port)"
http2_port="$(free_port)" grpc2_port="$(free_port)"
http3_port="$(free_port)" grpc3_port="$(free_port)"
http4_port="$(free_port)" grpc4_port="$(free_port)"

# wait_http URL CONTAINER: until URL answers 200, the container dies, or the time is up.
wait_http() {
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" == 200 ]]; do
    [[ "$(podman inspect -f '{{.State.Running}}' "$2")" == true ]] ||
      { podman logs "$2" 2>&1 | tail -n 40 >&2; die "$2 exited"; }
    ((SECONDS < deadline)) || { podman logs "$2" 2>&1 | tail -n 40 >&2; die "$2 not ready"; }
    sleep 0.5
  done
}

# bento_args OVERLAY [COMPONENTS]: the InferenceService container's env, user and command as
# podman arguments (tests/k8s/pod_spec.py reads the rendered manifest), the image and (runtime
# form) the model folder filled in.
bento_args() {
  local line
  while IFS= read -r line; do
    [[ "$line" == IMAGE ]] && line="$BENTO_IMAGE"
    printf '%s\n' "${line/#MODELDIR:/$models:}"
  done < <("$PY" -m tests.k8s.pod_spec "$@")
}

start_pod() {
  local args
  podman pod rm -f "$POD" >/dev/null 2>&1 || true
  podman pod create --name "$POD" -p "127.0.0.1:$http_port:8080" -p "127.0.0.1:$grpc_port:8081" \
    -p "127.0.0.1:$backend_port:8000" >/dev/null
  mapfile -t args < <(bento_args local --with custom-container)
  podman run -d --pod "$POD" --name "$POD-bento" "${args[@]}" >/dev/null
  wait_http "http://127.0.0.1:$http_port/v2/health/ready" "$POD-bento"
  podman run -d --pod "$POD" --name "$POD-backend" --read-only --tmpfs /tmp \
    -v "$data:/data:U" -e MODEL_SERVER_URL=127.0.0.1:8080 "$BACKEND_IMAGE" >/dev/null
  wait_http "http://127.0.0.1:$backend_port/health/ready" "$POD-backend"
}

# The gRPC variant as Knative runs it: PORT is the h2c port (8081) and the manifest's command
# keeps HTTP on 8080; the Bento's gRPC tests then go to the published h2c port.
start_grpc_pod() {
  local args
  podman pod rm -f "$POD-grpc" >/dev/null 2>&1 || true
  podman pod create --name "$POD-grpc" -p "127.0.0.1:$grpc2_port:8081" \
    -p "127.0.0.1:$http2_port:8080" >/dev/null
  mapfile -t args < <(bento_args local --with grpc,custom-container)
  podman run -d --pod "$POD-grpc" --name "$POD-grpc-bento" "${args[@]}" >/dev/null
  wait_http "http://127.0.0.1:$http2_port/v2/health/ready" "$POD-grpc-bento"
}
# The Bento's image serves ONNX Runtime and must not carry torch (754 MB of the old image).
check_no_torch() {
  podman run --rm --entrypoint python "$BENTO_IMAGE" -c \
    'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is not None)' ||
    die "$BENTO_IMAGE contains torch"
}
step no-torch check_no_torch
step start-and-ready start_pod

run_tests() {
  CONTAINER_BENTO_HTTP="127.0.0.1:$http_port" CONTAINER_BENTO_GRPC="127.0.0.1:$grpc_port" \
    CONTAINER_BENTO_NAME="$POD-bento" CONTAINER_BACKEND_URL="http://127.0.0.1:$backend_port" \
    "$PY" -m pytest -p tests.k8s.container_plugin -p no:cacheprovider -q \
    tests/bentos/circle_detector/test_rest_tritonclient.py \
    tests/bentos/circle_detector/test_grpc_tritonclient.py \
    tests/bentos/circle_detector/test_rest_errors.py \
    tests/k8s/container_checks.py
}
step tests run_tests

# scripts/smoke-test.sh itself, against the containers: a fake kubectl (tests/k8s/fake_cluster)
# answers the InferenceService URL and "port-forwards" to a Host-header router standing in for
# Knative's local gateway (model host -> the Bento) and the Istio ingress gateway (-> the backend).
run_smoke_test() {
  PATH="$ROOT/tests/k8s/fake_cluster:$PATH" FAKE_PYTHON="$PY" \
    FAKE_ISVC_URL="http://circle-detector.circle-detector.svc.cluster.local" \
    FAKE_MODEL_UPSTREAM="127.0.0.1:$http_port" FAKE_DEFAULT_UPSTREAM="127.0.0.1:$backend_port" \
    LOCAL_PORT="$(free_port)" MODEL_LOCAL_PORT="$(free_port)" "$ROOT/scripts/smoke-test.sh" local
}
step smoke-test-script run_smoke_test

run_grpc_tests() {
  CONTAINER_BENTO_HTTP="127.0.0.1:$http2_port" CONTAINER_BENTO_GRPC="127.0.0.1:$grpc2_port" \
    CONTAINER_BENTO_NAME="$POD-grpc-bento" \
    "$PY" -m pytest -p tests.k8s.container_plugin -p no:cacheprovider -q \
    tests/bentos/circle_detector/test_grpc_tritonclient.py
}
step grpc-variant-start start_grpc_pod
step grpc-variant-tests run_grpc_tests

# The runtime form, as KServe starts the ClusterServingRuntime: its args, the model read-only.
# start_runtime_pod NAME IMAGE HTTP_PORT GRPC_PORT: a pod serving IMAGE that way.
start_runtime_pod() {
  local name="$1" image="$2" http="$3" grpc="$4" args
  mkdir -p "$models"
  cp "$ROOT"/bentos/circle_detector/model/weights/circle_detector.{onnx,json} "$models/"
  chmod -R a+rX "$models"
  podman pod rm -f "$name" >/dev/null 2>&1 || true
  podman pod create --name "$name" -p "127.0.0.1:$http:8080" -p "127.0.0.1:$grpc:8081" >/dev/null
  mapfile -t args < <(BENTO_IMAGE="$image" bento_args local)
  podman run -d --pod "$name" --name "$name-bento" "${args[@]}" >/dev/null
  wait_http "http://127.0.0.1:$http/v2/health/ready" "$name-bento"
}
# run_runtime_tests NAME HTTP_PORT GRPC_PORT: the V2 tests against that pod.
run_runtime_tests() {
  CONTAINER_BENTO_HTTP="127.0.0.1:$2" CONTAINER_BENTO_GRPC="127.0.0.1:$3" \
    CONTAINER_BENTO_NAME="$1-bento" \
    "$PY" -m pytest -p tests.k8s.container_plugin -p no:cacheprovider -q \
    tests/bentos/circle_detector/test_rest_tritonclient.py \
    tests/bentos/circle_detector/test_grpc_tritonclient.py
}
step kserve-runtime-start start_runtime_pod "$POD-kserve" "$BENTO_IMAGE" "$http3_port" "$grpc3_port"
step kserve-runtime-tests run_runtime_tests "$POD-kserve" "$http3_port" "$grpc3_port"

# The real `bentoml containerize` image, started the same way.
CZ_IMAGE="${BENTO_IMAGE%:*}-containerize:${BENTO_IMAGE##*:}"
build_containerize() {
  BENTO_IMAGE="$CZ_IMAGE" "$ROOT/scripts/build-images.sh" --engine buildah --local-base --only bento
}
if [[ "$CONTAINERIZE" == 1 ]]; then
  ((skip_build)) || step containerize-image build_containerize
  step containerize-start start_runtime_pod "$POD-cz" "$CZ_IMAGE" "$http4_port" "$grpc4_port"
  step containerize-tests run_runtime_tests "$POD-cz" "$http4_port" "$grpc4_port"
fi

bento_bytes="$(podman image inspect -f '{{.Size}}' "$BENTO_IMAGE")"
[[ "$CONTAINERIZE" == 1 ]] && log "images: $(($(podman image inspect -f '{{.Size}}' "$CZ_IMAGE") / 1000000)) MB $CZ_IMAGE (bentoml containerize)"
log "images: $((bento_bytes / 1000000)) MB $BENTO_IMAGE (target: at most 600 MB)," \
  "$(($(podman image inspect -f '{{.Size}}' "$BACKEND_IMAGE") / 1000000)) MB $BACKEND_IMAGE"
((bento_bytes <= 600000000)) || log "warning: the Bento image is over its 600 MB target"
for name in base-image bento-image backend-image no-torch start-and-ready tests smoke-test-script \
  grpc-variant-start grpc-variant-tests kserve-runtime-start kserve-runtime-tests \
  containerize-image containerize-start containerize-tests; do
  [[ -n "${took[$name]:-}" ]] && log "took $name: ${took[$name]} s"
done
log "container test passed in ${SECONDS} s"
