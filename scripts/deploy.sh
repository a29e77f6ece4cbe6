#!/usr/bin/env bash
# Deploy an overlay (with optional variants) and wait until the model and the backend are ready.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KUBE_CONTEXT="${KUBE_CONTEXT:-}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-600s}"

usage() {
  cat <<USAGE
Usage: scripts/deploy.sh OVERLAY [--with COMPONENTS] [--bento-image REF] [--backend-image REF]
                         [--canary-percent N] [--storage-class NAME] [--dry-run] [--help]

Renders k8s/overlays/OVERLAY (one of: ${OVERLAYS[*]}) with scripts/render.sh, applies it with
kubectl (server-side, idempotent: re-running converges), then waits for the backend rollout and
the InferenceService's Ready condition. The model may scale to zero afterwards; that is normal.

  --with a,b            variants from k8s/components (any of: ${COMPONENTS[*]})
  --bento-image REF     model image (e.g. the new version for --with canary)
  --backend-image REF   backend image
  --canary-percent N    share of traffic for the new model revision (with --with canary)
  --storage-class NAME  the storage class of the backend's volume (local/dev; stage/prod keep
                        the uploads in S3 and have no volume: refused there)
  --dry-run             validate against the cluster's API server without changing anything

Before dev/stage/prod: the Secret circle-detector-api-key (key api-key) must exist in the
overlay's namespace; before stage/prod also the Secrets circle-detector-db (key database-url) and
circle-detector-storage (keys aws-access-key-id, aws-secret-access-key: the uploads' bucket) there,
and the TLS Secret circle-detector-tls in istio-system (see k8s/README.md); with
--with pull-secret the Secret circle-detector-registry. The script stops with the command to
create whichever is missing. The model (the runtime form): local needs the PVC
circle-detector-models (scripts/load-model-pvc.sh), dev/stage/prod the Secret
circle-detector-s3 (see k8s/components/s3-model). It also stops unless the cluster has Istio
1.22 or later (the
manifests use networking.istio.io/v1) and, with --with gpu, Knative's
kubernetes.podspec-nodeselector and kubernetes.podspec-tolerations features enabled.

Environment (defaults):
  KUBE_CONTEXT   the current context (for local: kind-circle-detector)
  WAIT_TIMEOUT   ${WAIT_TIMEOUT}
USAGE
}

overlay="" render_args=() dry_run=0
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --with | --bento-image | --backend-image | --canary-percent | --storage-class)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      render_args+=("$1" "$2"); shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) [[ -z "$overlay" ]] || die "one overlay only"; overlay="$1"; shift ;;
  esac
done
[[ -n "$overlay" ]] || { usage >&2; die "which overlay? (one of: ${OVERLAYS[*]})"; }
check_overlay "$overlay"
KUBECTL="$(kubectl_bin)"
[[ -z "$KUBE_CONTEXT" && "$overlay" == local ]] && KUBE_CONTEXT="kind-circle-detector"
k() { "$KUBECTL" ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} "$@"; }

manifests="$(mktemp)"
trap 'rm -f "$manifests"' EXIT
"$(dirname "${BASH_SOURCE[0]}")/render.sh" "$overlay" "${render_args[@]}" >"$manifests"
ns="$(awk '/^kind: Namespace$/{f=1} f && /^  name: /{print $2; exit}' "$manifests")"
[[ -n "$ns" ]] || die "the rendered overlay has no Namespace"
k version --request-timeout=10s >/dev/null 2>&1 || die "no cluster answers (context: ${KUBE_CONTEXT:-current}); for local run scripts/kind-up.sh"
k get crd inferenceservices.serving.kserve.io >/dev/null 2>&1 ||
  die "KServe is not installed in this cluster (scripts/kind-up.sh installs it)"

# Istio 1.22 promoted its networking APIs to v1, which every Gateway/VirtualService here uses.
istio_versions="$(k get crd virtualservices.networking.istio.io \
  -o jsonpath='{.spec.versions[?(@.served==true)].name}' 2>/dev/null || true)"
[[ " $istio_versions " == *" v1 "* ]] || die "Istio 1.22 or later is required (networking.istio.io/v1; \
this cluster serves: ${istio_versions:-no Istio CRDs}): scripts/kind-up.sh installs it, or upgrade Istio"

# The backend volume's storage class (local/dev: --storage-class, or the cluster's default).
storage_class="$(awk '/^kind: PersistentVolumeClaim$/{f=1} f && /^  storageClassName: /{print $2; exit}' "$manifests")"
storage_class="${storage_class//[\'\"]/}"
if [[ -n "$storage_class" ]]; then
  k get storageclass "$storage_class" >/dev/null 2>&1 ||
    die "StorageClass $storage_class does not exist in this cluster (kubectl get storageclass)"
fi

# nodeSelector/tolerations (components/gpu) reach the pod only with Knative's feature flags;
# without them the InferenceService never becomes Ready.
if grep -q 'nvidia.com/gpu.present' "$manifests"; then
  for flag in kubernetes.podspec-nodeselector kubernetes.podspec-tolerations; do
    value="$(k -n knative-serving get configmap config-features \
      -o jsonpath="{.data.${flag//./\\.}}" 2>/dev/null || true)"
    [[ "$value" == enabled || "$value" == allowed ]] || die "Knative's feature $flag is '${value:-unset}', not enabled (the GPU
  component's nodeSelector and tolerations need it; scripts/kind-up.sh enables both):
  kubectl -n knative-serving patch configmap/config-features --type merge \\
    -p '{\"data\":{\"kubernetes.podspec-nodeselector\":\"enabled\",\"kubernetes.podspec-tolerations\":\"enabled\"}}'"
  done
fi

if grep -q 'name: circle-detector-registry' "$manifests" && ((dry_run == 0)); then
  k -n "$ns" get secret circle-detector-registry >/dev/null 2>&1 || die "Secret circle-detector-registry missing in $ns:
  kubectl create namespace $ns --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n $ns create secret docker-registry circle-detector-registry --docker-server=REGISTRY --docker-username=USER --docker-password=TOKEN"
fi
if grep -q 'name: circle-detector-db' "$manifests" && ((dry_run == 0)); then
  k -n "$ns" get secret circle-detector-db >/dev/null 2>&1 || die "Secret circle-detector-db missing in $ns:
  kubectl create namespace $ns --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n $ns create secret generic circle-detector-db --from-literal=database-url='postgres://USER:PASSWORD@HOST:5432/DB'"
fi
if grep -q 'name: circle-detector-storage' "$manifests" && ((dry_run == 0)); then
  k -n "$ns" get secret circle-detector-storage >/dev/null 2>&1 || die "Secret circle-detector-storage missing in $ns (the uploads' S3 credentials):
  kubectl create namespace $ns --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n $ns create secret generic circle-detector-storage --from-literal=aws-access-key-id=KEY_ID --from-literal=aws-secret-access-key=SECRET
  (the bucket in STORAGE_URL must exist; see k8s/README.md, \"stage and prod\")"
fi
if grep -q 'name: circle-detector-api-key' "$manifests" && ((dry_run == 0)); then
  k -n "$ns" get secret circle-detector-api-key >/dev/null 2>&1 || die "Secret circle-detector-api-key missing in $ns:
  kubectl create namespace $ns --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n $ns create secret generic circle-detector-api-key --from-literal=api-key=\"\$(openssl rand -hex 32)\""
fi
# The model's storage (the runtime form): KServe's ServingRuntime CRDs, then the PVC on kind
# (scripts/load-model-pvc.sh fills it) or the S3 credentials Secret the ServiceAccount lists.
if grep -q '^kind: ClusterServingRuntime$' "$manifests"; then
  k get crd clusterservingruntimes.serving.kserve.io >/dev/null 2>&1 ||
    die "KServe's ClusterServingRuntime CRD is missing (KServe 0.14 installs it; scripts/kind-up.sh)"
fi
model_pvc="$(sed -n 's#^ *storageUri: pvc://\([^/]*\)/.*#\1#p' "$manifests" | head -n 1)"
if [[ -n "$model_pvc" ]] && ((dry_run == 0)); then
  k -n "$ns" get pvc "$model_pvc" >/dev/null 2>&1 || die "the model's PersistentVolumeClaim $model_pvc is missing in $ns:
  scripts/load-model-pvc.sh $overlay   (creates it and copies the exported model into it)"
fi
if grep -q 'name: circle-detector-s3' "$manifests" && ((dry_run == 0)); then
  k -n "$ns" get secret circle-detector-s3 >/dev/null 2>&1 || die "Secret circle-detector-s3 missing in $ns (the model's S3 credentials):
  kubectl create namespace $ns --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n $ns create secret generic circle-detector-s3 --from-literal=AWS_ACCESS_KEY_ID=... --from-literal=AWS_SECRET_ACCESS_KEY=..."
fi
if grep -q 'credentialName: circle-detector-tls' "$manifests"; then
  k -n istio-system get secret circle-detector-tls >/dev/null 2>&1 || die "TLS Secret missing:
  kubectl -n istio-system create secret tls circle-detector-tls --cert=tls.crt --key=tls.key"
fi

if ((dry_run)); then
  k apply --server-side --dry-run=server -f "$manifests"
  log "dry run of $overlay accepted by the API server"
  exit 0
fi
log "applying $overlay to namespace $ns"
k apply --server-side --force-conflicts -f "$manifests"
log "waiting for the backend rollout and the InferenceService"
k -n "$ns" wait --for=condition=Ready inferenceservice/circle-detector --timeout "$WAIT_TIMEOUT" ||
  { k -n "$ns" describe inferenceservice/circle-detector | tail -n 30 >&2; die "model not ready"; }
k -n "$ns" rollout status deployment/circle-detector-backend --timeout "$WAIT_TIMEOUT" ||
  { k -n "$ns" logs deployment/circle-detector-backend --tail 40 >&2; die "backend not ready"; }
log "deployed: $(k -n "$ns" get inferenceservice circle-detector -o jsonpath='{.status.url}')"
