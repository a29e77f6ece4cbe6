#!/usr/bin/env bash
# Smoke-test a deployment: the model through Knative's local gateway, the backend through the ingress.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KUBE_CONTEXT="${KUBE_CONTEXT:-}"
LOCAL_PORT="${LOCAL_PORT:-18080}"
MODEL_LOCAL_PORT="${MODEL_LOCAL_PORT:-18081}"
TLS_LOCAL_PORT="${TLS_LOCAL_PORT:-18443}"
GATEWAY_NS="${GATEWAY_NS:-istio-system}"
GATEWAY_SVC="${GATEWAY_SVC:-istio-ingressgateway}"
LOCAL_GATEWAY_SVC="${LOCAL_GATEWAY_SVC:-knative-local-gateway}"
REQUEST_TIMEOUT="${REQUEST_TIMEOUT:-120}"
INSECURE_TLS="${INSECURE_TLS:-0}"

usage() {
  cat <<USAGE
Usage: scripts/smoke-test.sh OVERLAY [--help]

The model is cluster-local (label networking.knative.dev/visibility: cluster-local): only
Knative's local gateway routes to it. So this port-forwards two gateways in ${GATEWAY_NS}:
  ${LOCAL_GATEWAY_SVC} (port 80) to 127.0.0.1:${MODEL_LOCAL_PORT}, the path the backend takes,
  ${GATEWAY_SVC} (port 80, and 443 with TLS) to 127.0.0.1:${LOCAL_PORT} (and ${TLS_LOCAL_PORT}),
and checks:
  1. the model through the local gateway by its hostname (Host header from the InferenceService's
     status.url, circle-detector.NAMESPACE.svc.cluster.local): GET /v2/health/ready (may wait for
     a cold start from zero), GET /v2/models/circle-detector, one V2 infer with a PNG drawn here
  2. that the public ingress does not serve the model (404 for its hostname there)
  3. the backend through the public ingress: GET /health/ready, POST /api/v1/images/; with TLS
     (stage/prod) over HTTPS by the VirtualService's host, and plain HTTP answered 301
Fails at the first check that does not answer as expected, printing the response. Every
port-forward it starts is stopped when it ends (also on Ctrl-C or SIGTERM).

Environment (defaults):
  KUBE_CONTEXT       the current context (for local: kind-circle-detector)
  LOCAL_PORT         ${LOCAL_PORT} (public ingress, HTTP)
  TLS_LOCAL_PORT     ${TLS_LOCAL_PORT} (public ingress, HTTPS)
  MODEL_LOCAL_PORT   ${MODEL_LOCAL_PORT} (Knative's local gateway)
  GATEWAY_NS         ${GATEWAY_NS}
  GATEWAY_SVC        ${GATEWAY_SVC}
  LOCAL_GATEWAY_SVC  ${LOCAL_GATEWAY_SVC}
  REQUEST_TIMEOUT    ${REQUEST_TIMEOUT} (seconds, per request)
  INSECURE_TLS       ${INSECURE_TLS} (1: do not verify the gateway's certificate, e.g. self-signed)
USAGE
}

overlay=""
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option: $arg" ;;
    *) [[ -z "$overlay" ]] || die "one overlay only"; overlay="$arg" ;;
  esac
done
[[ -n "$overlay" ]] || { usage >&2; die "which overlay? (one of: ${OVERLAYS[*]})"; }
check_overlay "$overlay"
KUBECTL="$(kubectl_bin)"
need curl
ROOT="$(repo_root)"
PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || PY="python3"
[[ -z "$KUBE_CONTEXT" && "$overlay" == local ]] && KUBE_CONTEXT="kind-circle-detector"
k() { "$KUBECTL" ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} "$@"; }

manifests="$("$ROOT/scripts/render.sh" "$overlay")"
ns="$(awk '/^kind: Namespace$/{f=1} f && /^  name: /{print $2; exit}' <<<"$manifests")"
backend_host="$(awk '/^kind: VirtualService$/{f=1} f && /^  hosts:$/{getline; print $2; exit}' <<<"$manifests")"
url="$(k -n "$ns" get inferenceservice circle-detector -o jsonpath='{.status.url}')" ||
  die "no InferenceService circle-detector in $ns (run scripts/deploy.sh $overlay)"
model_host="${url#*://}"
[[ -n "$model_host" ]] || die "the InferenceService has no URL yet (not ready?)"

tls=0
grep -q 'credentialName: circle-detector-tls' <<<"$manifests" && tls=1

work="$(mktemp -d)"
cleanup() {
  stop_bg
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# forward SERVICE LOCAL:REMOTE...: a port-forward in its own process group, waited for.
forward() {
  local svc="$1" first="${2%%:*}" log
  log="$work/pf-$svc.log"
  start_bg "$log" "$KUBECTL" ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} -n "$GATEWAY_NS" \
    port-forward "svc/$svc" "${@:2}"
  for _ in $(seq 1 50); do
    curl -s -o /dev/null "http://127.0.0.1:$first/" && return 0
    kill -0 "${BG_GROUPS[-1]}" 2>/dev/null || die "port-forward of $svc failed: $(cat "$log")"
    sleep 0.2
  done
  die "port-forward of $svc did not answer on 127.0.0.1:$first: $(cat "$log")"
}
forward "$LOCAL_GATEWAY_SVC" "$MODEL_LOCAL_PORT:80"
if ((tls)); then
  forward "$GATEWAY_SVC" "$LOCAL_PORT:80" "$TLS_LOCAL_PORT:443"
else
  forward "$GATEWAY_SVC" "$LOCAL_PORT:80"
fi
model_base="http://127.0.0.1:$MODEL_LOCAL_PORT"
base="http://127.0.0.1:$LOCAL_PORT"

# expect CODE DESCRIPTION CURL-ARGS...: one request, fail fast on any other status.
expect() {
  local want="$1" what="$2" code
  shift 2
  code="$(curl -s -m "$REQUEST_TIMEOUT" -o "$work/body" -w '%{http_code}' "$@" || true)"
  [[ "$code" == "$want" ]] || die "$what: HTTP $code (want $want): $(head -c 500 "$work/body")"
  log "ok  $what ($code)"
}

"$PY" - "$work/circles.png" <<'PY'
import sys, zlib, struct
w = h = 128
rows = []
for y in range(h):
    row = bytearray([0])
    for x in range(w):
        d = ((x - 64) ** 2 + (y - 64) ** 2) ** 0.5
        row.append(30 if abs(d - 30) < 2 else 230)
    rows.append(bytes(row))
def chunk(t, data):
    c = struct.pack(">I", len(data)) + t + data
    return c + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
"$PY" - "$work/circles.png" "$work/infer.json" <<'PY'
import base64, json, sys
data = base64.b64encode(open(sys.argv[1], "rb").read()).decode()
image = {"name": "image", "datatype": "BYTES", "shape": [1], "data": [data],
         "parameters": {"content_type": "base64"}}
body = {"inputs": [image]}
json.dump(body, open(sys.argv[2], "w"))
PY

H=(-H "Host: $model_host")
expect 200 "model ready through the local gateway (cold start allowed)" "${H[@]}" "$model_base/v2/health/ready"
expect 200 "model metadata" "${H[@]}" "$model_base/v2/models/circle-detector"
expect 200 "model infer" "${H[@]}" -H 'Content-Type: application/json' \
  --data-binary "@$work/infer.json" "$model_base/v2/models/circle-detector/infer"
grep -q '"num_detections"' "$work/body" || die "infer answer has no num_detections: $(head -c 500 "$work/body")"
# The public ingress must not know the model's hostname (cluster-local visibility).
public_code="$(curl -s -m "$REQUEST_TIMEOUT" -o "$work/body" -w '%{http_code}' "${H[@]}" \
  "$base/v2/models/circle-detector" || true)"
[[ "$public_code" != 200 ]] || die "the public ingress serves the model ($model_host): it must be cluster-local"
log "ok  model not on the public ingress ($public_code)"

backend_host="${backend_host//[\'\"]/}"
BH=()
[[ "$backend_host" != "*" && -n "$backend_host" ]] && BH=(-H "Host: $backend_host")
backend="$base"
if ((tls)); then
  expect 301 "plain HTTP redirected to HTTPS" "${BH[@]}" "$base/health/ready"
  BH=(--resolve "$backend_host:$TLS_LOCAL_PORT:127.0.0.1")
  [[ "$INSECURE_TLS" == 1 ]] && BH+=(--insecure)
  backend="https://$backend_host:$TLS_LOCAL_PORT"
fi
expect 200 "backend ready" "${BH[@]}" "$backend/health/ready"
expect 201 "backend upload" "${BH[@]}" -F "file=@$work/circles.png;type=image/png" "$backend/api/v1/images/"
log "smoke test of $overlay passed"
