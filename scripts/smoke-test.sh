#!/usr/bin/env bash
# Smoke-test a deployment through the Istio ingress gateway: the model by Host header, the backend.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KUBE_CONTEXT="${KUBE_CONTEXT:-}"
LOCAL_PORT="${LOCAL_PORT:-18080}"
GATEWAY_NS="${GATEWAY_NS:-istio-system}"
GATEWAY_SVC="${GATEWAY_SVC:-istio-ingressgateway}"
REQUEST_TIMEOUT="${REQUEST_TIMEOUT:-120}"

usage() {
  cat <<USAGE
Usage: scripts/smoke-test.sh OVERLAY [--help]

Port-forwards ${GATEWAY_NS}/${GATEWAY_SVC} to 127.0.0.1:${LOCAL_PORT} and checks, through it:
  1. the model by its KServe hostname (Host header from the InferenceService's status.url):
     GET /v2/health/ready, GET /v2/models/circle-detector, and one V2 infer with a PNG drawn here
     (the first call may wait for a cold start from zero)
  2. the backend through the Gateway/VirtualService: GET /health/ready, POST /api/v1/images/
Fails at the first check that does not answer as expected, printing the response.
For stage/prod the backend is checked with its VirtualService host as Host header.

Environment (defaults):
  KUBE_CONTEXT     the current context (for local: kind-circle-detector)
  LOCAL_PORT       ${LOCAL_PORT}
  GATEWAY_NS       ${GATEWAY_NS}
  GATEWAY_SVC      ${GATEWAY_SVC}
  REQUEST_TIMEOUT  ${REQUEST_TIMEOUT} (seconds, per request)
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

work="$(mktemp -d)"
k -n "$GATEWAY_NS" port-forward "svc/$GATEWAY_SVC" "$LOCAL_PORT:80" >"$work/pf.log" 2>&1 &
pf=$!
trap 'kill "$pf" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do
  curl -s -o /dev/null "http://127.0.0.1:$LOCAL_PORT/" && break
  kill -0 "$pf" 2>/dev/null || die "port-forward failed: $(cat "$work/pf.log")"
  sleep 0.2
done
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
expect 200 "model ready (cold start allowed)" "${H[@]}" "$base/v2/health/ready"
expect 200 "model metadata" "${H[@]}" "$base/v2/models/circle-detector"
expect 200 "model infer" "${H[@]}" -H 'Content-Type: application/json' \
  --data-binary "@$work/infer.json" "$base/v2/models/circle-detector/infer"
grep -q '"num_detections"' "$work/body" || die "infer answer has no num_detections: $(head -c 500 "$work/body")"
backend_host="${backend_host//[\'\"]/}"
BH=()
[[ "$backend_host" != "*" && -n "$backend_host" ]] && BH=(-H "Host: $backend_host")
expect 200 "backend ready" "${BH[@]}" "$base/health/ready"
expect 201 "backend upload" "${BH[@]}" -F "file=@$work/circles.png;type=image/png" "$base/api/v1/images/"
log "smoke test of $overlay passed"
