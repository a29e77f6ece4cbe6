#!/usr/bin/env bash
# Put the exported model on the PersistentVolumeClaim that the overlay's storageUri (pvc://) names,
# so that KServe mounts it read-only at /mnt/models for the ClusterServingRuntime.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KUBE_CONTEXT="${KUBE_CONTEXT:-}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-180s}"
PVC_SIZE="${PVC_SIZE:-1Gi}"
HELPER="circle-detector-model-loader"

usage() {
  cat <<USAGE
Usage: scripts/load-model-pvc.sh [OVERLAY] [--model-dir DIR] [--help]

Reads storageUri pvc://CLAIM/PATH from the rendered overlay (default: local), then
  1. applies the Namespace and the PersistentVolumeClaim CLAIM (ReadWriteOnce, \$PVC_SIZE; kept
     if it exists),
  2. starts a helper pod ($HELPER) with the claim mounted read-write: the Bento's image
     (already on the node: kind load), as uid 1034 like the runtime, doing nothing,
  3. replaces PATH on the claim with DIR (kubectl cp) and lists what arrived,
  4. deletes the helper pod (also on failure), so the InferenceService's pods can mount the claim.
DIR is what \`circle-detector export\` writes: circle_detector.onnx + circle_detector.json, or a
repository of version folders (\`circle-detector export --repository DIR\`). Default: the
committed export (bentos/circle_detector/model/weights, its .onnx and .json only).
Run it before scripts/deploy.sh local, and again after a new export (then delete the model's
pods, or redeploy: a running pod keeps the files it loaded).

Environment (defaults):
  KUBE_CONTEXT   the current context (for local: kind-circle-detector)
  WAIT_TIMEOUT   ${WAIT_TIMEOUT} (the helper pod's start)
  PVC_SIZE       ${PVC_SIZE}
USAGE
}

overlay="local" model_dir=""
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --model-dir) model_dir="${2:?--model-dir needs a value}"; shift 2 ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) overlay="$1"; shift ;;
  esac
done
check_overlay "$overlay"
root="$(repo_root)"
KUBECTL="$(kubectl_bin)"
[[ -z "$KUBE_CONTEXT" && "$overlay" == local ]] && KUBE_CONTEXT="kind-circle-detector"
k() { "$KUBECTL" ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} "$@"; }

# has_model DIR: an export (the .onnx and its .json) or a repository of such version folders.
has_model() {
  local d
  [[ -f "$1/circle_detector.onnx" && -f "$1/circle_detector.json" ]] && return 0
  for d in "$1"/*/; do
    [[ -f "$d/circle_detector.onnx" && -f "$d/circle_detector.json" ]] && return 0
  done
  return 1
}

staged="$(mktemp -d)"
trap 'rm -rf "$staged"' EXIT
if [[ -z "$model_dir" ]]; then
  model_dir="$staged/model"
  mkdir -p "$model_dir"
  cp "$root"/bentos/circle_detector/model/weights/circle_detector.{onnx,json} "$model_dir/"
fi
[[ -d "$model_dir" ]] || die "--model-dir $model_dir is not a folder"
has_model "$model_dir" || die "$model_dir holds no exported model (circle_detector.onnx + circle_detector.json, or version folders of them): circle-detector export --output $model_dir"

manifests="$staged/manifests.yaml"
"$root/scripts/render.sh" "$overlay" >"$manifests"
uri="$(sed -n 's#^ *storageUri: \(pvc://.*\)$#\1#p' "$manifests" | head -n 1)"
[[ -n "$uri" ]] || die "overlay $overlay has no pvc:// storageUri (it fetches the model from elsewhere)"
rest="${uri#pvc://}" claim="${rest%%/*}" path="${rest#*/}"
[[ "$path" != "$rest" && -n "$path" ]] || path=""
ns="$(awk '/^kind: Namespace$/{f=1} f && /^  name: /{print $2; exit}' "$manifests")"
image="$(awk '/^kind: ClusterServingRuntime$/{f=1} f && /^ *image: /{print $NF; exit}' "$manifests")"
[[ -n "$ns" && -n "$image" ]] || die "the rendered overlay names no Namespace or runtime image"
target="/models${path:+/$path}"

log "claim $claim in $ns, model at $target, helper image $image"
k apply -f - <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: $claim
  namespace: $ns
  labels:
    app.kubernetes.io/part-of: circle-detector
    app.kubernetes.io/component: model
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: $PVC_SIZE
---
apiVersion: v1
kind: Pod
metadata:
  name: $HELPER
  namespace: $ns
  labels:
    app.kubernetes.io/part-of: circle-detector
    app.kubernetes.io/component: model-loader
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 1034
    runAsGroup: 1034
    fsGroup: 1034
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: loader
      image: $image
      imagePullPolicy: IfNotPresent
      command: [python, -c, "import time; time.sleep(3600)"]
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
      volumeMounts:
        - name: models
          mountPath: /models
  volumes:
    - name: models
      persistentVolumeClaim:
        claimName: $claim
YAML
trap 'k -n "$ns" delete pod "$HELPER" --ignore-not-found --wait=false >/dev/null 2>&1 || true; rm -rf "$staged"' EXIT
k -n "$ns" wait --for=condition=Ready "pod/$HELPER" --timeout "$WAIT_TIMEOUT" ||
  { k -n "$ns" describe "pod/$HELPER" | tail -n 20 >&2; die "the helper pod did not start"; }
k -n "$ns" exec "$HELPER" -- rm -rf "$target"
k -n "$ns" exec "$HELPER" -- mkdir -p "$(dirname "$target")"
k -n "$ns" cp "$model_dir" "$HELPER:$target"
k -n "$ns" exec "$HELPER" -- ls -lR "$target" >&2
k -n "$ns" delete pod "$HELPER" --wait=true >/dev/null
log "model loaded: $uri (scripts/deploy.sh $overlay next)"
