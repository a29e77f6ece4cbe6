#!/usr/bin/env bash
# Remove a deployed overlay, and with --cluster the whole kind cluster.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KUBE_CONTEXT="${KUBE_CONTEXT:-}"
KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-circle-detector}"

usage() {
  cat <<USAGE
Usage: scripts/teardown.sh OVERLAY [--keep-data] [--help]
       scripts/teardown.sh --cluster [--help]

  OVERLAY      delete everything the overlay created (kubectl delete --ignore-not-found:
               idempotent), namespace included unless --keep-data
  --keep-data  keep the namespace with its PersistentVolumeClaim and Secrets
  --cluster    delete the kind cluster '${KIND_CLUSTER_NAME}' (everything in it)

Environment (defaults):
  KUBE_CONTEXT       the current context (for local: kind-circle-detector)
  KIND_CLUSTER_NAME  ${KIND_CLUSTER_NAME}
USAGE
}

overlay="" keep=0 cluster=0
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --keep-data) keep=1 ;;
    --cluster) cluster=1 ;;
    -*) usage >&2; die "unknown option: $arg" ;;
    *) [[ -z "$overlay" ]] || die "one overlay only"; overlay="$arg" ;;
  esac
done
if ((cluster)); then
  [[ -z "$overlay" ]] || die "--cluster deletes the cluster; name no overlay"
  need kind
  if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; then
    kind delete cluster --name "$KIND_CLUSTER_NAME"
  else
    log "no kind cluster $KIND_CLUSTER_NAME: nothing to do"
  fi
  exit 0
fi
[[ -n "$overlay" ]] || { usage >&2; die "which overlay? (one of: ${OVERLAYS[*]}), or --cluster"; }
check_overlay "$overlay"
KUBECTL="$(kubectl_bin)"
[[ -z "$KUBE_CONTEXT" && "$overlay" == local ]] && KUBE_CONTEXT="kind-circle-detector"
k() { "$KUBECTL" ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} "$@"; }

manifests="$(mktemp)"
trap 'rm -f "$manifests"' EXIT
"$(dirname "${BASH_SOURCE[0]}")/render.sh" "$overlay" >"$manifests"
ns="$(awk '/^kind: Namespace$/{f=1} f && /^  name: /{print $2; exit}' "$manifests")"
if ((keep)); then
  # Everything but the Namespace and the claim holding the uploads and the SQLite file.
  "$(repo_root)/.venv/bin/python" - "$manifests" >"$manifests.keep" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
keep = {"Namespace", "PersistentVolumeClaim"}
print(yaml.safe_dump_all([d for d in docs if d["kind"] not in keep]))
PY
  mv "$manifests.keep" "$manifests"
fi
k delete --ignore-not-found --wait=true -f "$manifests"
log "removed $overlay from $ns$( ((keep)) && echo ' (kept the namespace and its data)')"
