#!/usr/bin/env bash
# Create a kind cluster with pinned Istio, Knative Serving (net-istio) and KServe, each waited for.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# Pinned versions: a combination released and documented together (KServe's serverless install).
# Kubernetes 1.30 is inside KServe 0.14's tested range (1.28 to 1.30); the node image is the one
# kind v0.25.0 was released with, by digest (kind's release notes: node images are supported with
# the kind version they were built for).
KIND_VERSION="${KIND_VERSION:-v0.25.0}"
KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-circle-detector}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.30.6@sha256:b6d08db72079ba5ae1f4a88a09025c0a904af3b52387643c285442afb05ab994}"
ISTIO_VERSION="${ISTIO_VERSION:-1.23.2}"
KNATIVE_VERSION="${KNATIVE_VERSION:-knative-v1.15.2}"
NET_ISTIO_VERSION="${NET_ISTIO_VERSION:-knative-v1.15.1}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.16.1}"
KSERVE_VERSION="${KSERVE_VERSION:-v0.14.1}"
INGRESS_HTTP_PORT="${INGRESS_HTTP_PORT:-8080}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-600s}"
RETRY_ATTEMPTS="${RETRY_ATTEMPTS:-30}"
RETRY_DELAY_S="${RETRY_DELAY_S:-10}"
GH="https://github.com"

usage() {
  cat <<USAGE
Usage: scripts/kind-up.sh [--print-versions] [--help]

Creates the kind cluster '${KIND_CLUSTER_NAME}' (skipped when it exists) and installs, in order,
waiting for each to be ready (re-running applies the same manifests again: idempotent):
  1. Istio ${ISTIO_VERSION} (istioctl, profile 'default': istiod + istio-ingressgateway)
  2. Knative Serving ${KNATIVE_VERSION} with net-istio ${NET_ISTIO_VERSION}; once its webhook
     is Available, its ConfigMaps are patched (retried: the webhook refuses them until it
     serves): external domain example.com, tags under dev.local/ never resolved to digests,
     features kubernetes.podspec-nodeselector and -tolerations enabled (components/gpu)
  3. cert-manager ${CERT_MANAGER_VERSION} (KServe's webhook certificates), its webhook waited for
  4. KServe ${KSERVE_VERSION} (controller + cluster serving runtimes), serverless mode; both
     manifests applied with retries until KServe's and cert-manager's webhooks accept them
Needs docker (or podman with KIND_EXPERIMENTAL_PROVIDER=podman), kind ${KIND_VERSION}, kubectl and
curl, and network access to the release downloads. About 4 CPUs and 8 GiB for the cluster.

  --print-versions  print the pinned versions and exit

Environment (defaults):
  KIND_VERSION          ${KIND_VERSION} (the kind binary must be this version)
  KIND_CLUSTER_NAME     ${KIND_CLUSTER_NAME}
  KIND_NODE_IMAGE       ${KIND_NODE_IMAGE}
  ISTIO_VERSION         ${ISTIO_VERSION}
  KNATIVE_VERSION       ${KNATIVE_VERSION}
  NET_ISTIO_VERSION     ${NET_ISTIO_VERSION}
  CERT_MANAGER_VERSION  ${CERT_MANAGER_VERSION}
  KSERVE_VERSION        ${KSERVE_VERSION}
  WAIT_TIMEOUT          ${WAIT_TIMEOUT} (each wait)
  RETRY_ATTEMPTS        ${RETRY_ATTEMPTS} (applies and patches a webhook may refuse)
  RETRY_DELAY_S         ${RETRY_DELAY_S}
  ISTIOCTL              istioctl of ISTIO_VERSION (default: downloaded into build/)
USAGE
}

print_versions() {
  local k8s="${KIND_NODE_IMAGE%@*}"
  k8s="${k8s##*:}"
  printf '%-14s %s\n' kubernetes "${k8s#v}" kind "$KIND_VERSION" kind-node "$KIND_NODE_IMAGE" \
    istio "$ISTIO_VERSION" \
    knative-serving "$KNATIVE_VERSION" net-istio "$NET_ISTIO_VERSION" \
    cert-manager "$CERT_MANAGER_VERSION" kserve "$KSERVE_VERSION"
}

for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --print-versions) print_versions; exit 0 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done

need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl
need curl
# The node image is built for one kind release: another kind may not start it.
kind_version="$(kind version 2>/dev/null | awk '{print $2}')"
[[ "$kind_version" == "$KIND_VERSION" ]] || die "kind ${kind_version:-?} found, ${KIND_VERSION} pinned: install it
  (go install sigs.k8s.io/kind@${KIND_VERSION}, or curl -Lo kind https://kind.sigs.k8s.io/dl/${KIND_VERSION}/kind-linux-amd64)
  or set KIND_VERSION and a matching KIND_NODE_IMAGE from that release's notes"
CTX="kind-$KIND_CLUSTER_NAME"
k() { kubectl --context "$CTX" "$@"; }
# kr ARGS...: k with retries (calls that a webhook refuses until it is ready).
kr() { retry "$RETRY_ATTEMPTS" "$RETRY_DELAY_S" k "$@"; }

# 0. The cluster.
if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; then
  log "kind cluster $KIND_CLUSTER_NAME exists"
else
  log "creating kind cluster $KIND_CLUSTER_NAME ($KIND_NODE_IMAGE)"
  kind create cluster --name "$KIND_CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --wait 120s
fi
k cluster-info >/dev/null || die "cluster $CTX does not answer"

# 1. Istio, with the istioctl of the pinned release (cached under build/).
ISTIO_DIR="$(repo_root)/build/istio-$ISTIO_VERSION"
ISTIOCTL="${ISTIOCTL:-$ISTIO_DIR/bin/istioctl}"
if [[ ! -x "$ISTIOCTL" ]]; then
  log "downloading istioctl $ISTIO_VERSION"
  mkdir -p "$(dirname "$ISTIO_DIR")"
  os="linux" arch="amd64"
  [[ "$(uname -s)" == Darwin ]] && os="osx"
  [[ "$(uname -m)" == arm64 || "$(uname -m)" == aarch64 ]] && arch="arm64"
  curl -fsSL "$GH/istio/istio/releases/download/$ISTIO_VERSION/istio-$ISTIO_VERSION-$os-$arch.tar.gz" |
    tar -xz -C "$(dirname "$ISTIO_DIR")" || die "could not download Istio $ISTIO_VERSION"
fi
log "installing Istio $ISTIO_VERSION"
"$ISTIOCTL" install --context "$CTX" -y --set profile=default \
  --set values.gateways.istio-ingressgateway.type=NodePort
k -n istio-system rollout status deploy/istiod --timeout "$WAIT_TIMEOUT"
k -n istio-system rollout status deploy/istio-ingressgateway --timeout "$WAIT_TIMEOUT"

# 2. Knative Serving + net-istio.
KN="$GH/knative/serving/releases/download/$KNATIVE_VERSION"
NI="$GH/knative/net-istio/releases/download/$NET_ISTIO_VERSION"
log "installing Knative Serving $KNATIVE_VERSION"
kr apply -f "$KN/serving-crds.yaml"
k wait --for=condition=Established crd/services.serving.knative.dev --timeout "$WAIT_TIMEOUT"
kr apply -f "$KN/serving-core.yaml"
# Knative validates its ConfigMaps with a webhook (failurePolicy: Fail): wait for it, then retry
# the patches, since Available comes a little before the webhook serves its certificate.
k -n knative-serving wait --for=condition=Available deploy/webhook --timeout "$WAIT_TIMEOUT"
log "installing net-istio $NET_ISTIO_VERSION"
kr apply -f "$NI/net-istio.yaml"
k -n knative-serving wait --for=condition=Available deploy/net-istio-webhook --timeout "$WAIT_TIMEOUT"
# Images under dev.local/ are never resolved to digests (they exist only on the kind nodes).
kr -n knative-serving patch configmap/config-deployment --type merge \
  -p '{"data":{"registries-skipping-tag-resolving":"kind.local,ko.local,dev.local"}}'
kr -n knative-serving patch configmap/config-domain --type merge -p '{"data":{"example.com":""}}'
# components/gpu sets nodeSelector and tolerations: Knative drops them from the pod unless enabled.
kr -n knative-serving patch configmap/config-features --type merge \
  -p '{"data":{"kubernetes.podspec-nodeselector":"enabled","kubernetes.podspec-tolerations":"enabled"}}'
k -n knative-serving wait --for=condition=Available deploy --all --timeout "$WAIT_TIMEOUT"

# 3. cert-manager.
log "installing cert-manager $CERT_MANAGER_VERSION"
kr apply -f "$GH/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
k -n cert-manager wait --for=condition=Available deploy --all --timeout "$WAIT_TIMEOUT"

# 4. KServe (server-side apply: its CRDs are too large for the last-applied annotation). Its
# Certificate and Issuer need cert-manager's webhook to answer, which Available does not promise.
KS="$GH/kserve/kserve/releases/download/$KSERVE_VERSION"
log "installing KServe $KSERVE_VERSION"
kr apply --server-side --force-conflicts -f "$KS/kserve.yaml"
k -n kserve wait --for=condition=Available deploy/kserve-controller-manager --timeout "$WAIT_TIMEOUT"
# The cluster resources need KServe's own webhook to answer.
kr apply --server-side --force-conflicts -f "$KS/kserve-cluster-resources.yaml" ||
  die "KServe's webhook never accepted kserve-cluster-resources.yaml"
log "ready: kind cluster $KIND_CLUSTER_NAME with Istio, Knative Serving, KServe"
