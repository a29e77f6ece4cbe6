#!/usr/bin/env bash
# Render an overlay, optionally with variant components and image overrides, to stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<USAGE
Usage: scripts/render.sh OVERLAY [--with COMPONENTS] [--bento-image REF] [--backend-image REF]
                         [--canary-percent N] [--storage-class NAME] [--help]

Prints the manifests of k8s/overlays/OVERLAY (one of: ${OVERLAYS[*]}) rendered by kustomize.
  --with a,b            add optional components from k8s/components (any of: ${COMPONENTS[*]});
                        custom-container (the predictor as a custom container, the model in the
                        image) is applied after the others
  --bento-image REF     use this image for the model (predictor.model.image over the runtime's;
                        with custom-container the predictor container's)
  --backend-image REF   use this image for the backend Deployment
  --canary-percent N    traffic share of the new revision with --with canary (default 10)
  --storage-class NAME  storage class of the backend's volume (local/dev; stage/prod keep the
                        uploads in S3 and have none: refused there)

The variant is built in a temporary kustomization that includes the overlay and the components,
so overlays stay exactly as committed. kustomize: .venv/bin/kubectl, kubectl or kustomize.
USAGE
}

overlay="" with="" bento_image="" backend_image="" canary_percent="" storage_class=""
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --with) with="${2:?--with needs a value}"; shift 2 ;;
    --bento-image) bento_image="${2:?--bento-image needs a value}"; shift 2 ;;
    --backend-image) backend_image="${2:?--backend-image needs a value}"; shift 2 ;;
    --canary-percent) canary_percent="${2:?--canary-percent needs a value}"; shift 2 ;;
    --storage-class) storage_class="${2:?--storage-class needs a value}"; shift 2 ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) [[ -z "$overlay" ]] || die "one overlay only (got '$overlay' and '$1')"; overlay="$1"; shift ;;
  esac
done
[[ -n "$overlay" ]] || { usage >&2; die "which overlay? (one of: ${OVERLAYS[*]})"; }
check_overlay "$overlay"
check_components "$with"
if [[ -n "$canary_percent" ]]; then
  [[ "$canary_percent" =~ ^[0-9]+$ && "$canary_percent" -le 100 ]] ||
    die "--canary-percent must be an integer 0..100 (got '$canary_percent')"
  [[ ",$with," == *",canary,"* ]] || die "--canary-percent needs --with canary"
fi
# A DNS subdomain, as the API server requires of a StorageClass name.
[[ -z "$storage_class" || "$storage_class" =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]] ||
  die "--storage-class must be a StorageClass name (lower case, digits, '-', '.'), got '$storage_class'"

root="$(repo_root)"
read -r -a kustomize <<<"$(kustomize_cmd)"

if [[ -z "$with$bento_image$backend_image$storage_class" ]]; then
  exec "${kustomize[@]}" "$root/k8s/overlays/$overlay"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# kustomize accepts only relative paths to other kustomizations.
rel() { realpath --relative-to="$work" "$1"; }
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  echo "  - $(rel "$root/k8s/overlays/$overlay")"
  if [[ -n "$with" ]]; then
    echo "components:"
    IFS=, read -r -a comps <<<"$with"
    # custom-container last: it moves predictor.model (which the others patch) to containers[0].
    for c in "${comps[@]}"; do
      [[ "$c" == custom-container ]] || echo "  - $(rel "$root/k8s/components/$c")"
    done
    [[ ",$with," == *",custom-container,"* ]] && echo "  - $(rel "$root/k8s/components/custom-container")"
  fi
  echo "patches:"
  if [[ -n "$bento_image" ]]; then
    # The runtime form: the InferenceService pins the image over the runtime's (a new revision,
    # so --with canary rolls it out); the runtime keeps the overlay's. custom-container: its image.
    if [[ ",$with," == *",custom-container,"* ]]; then image_path=/spec/predictor/containers/0/image
    else image_path=/spec/predictor/model/image; fi
    cat <<PATCH
  - target: {group: serving.kserve.io, kind: InferenceService, name: circle-detector}
    patch: |-
      - op: add
        path: $image_path
        value: "$bento_image"
PATCH
  fi
  if [[ -n "$backend_image" ]]; then
    cat <<PATCH
  - target: {group: apps, kind: Deployment, name: circle-detector-backend}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/image
        value: "$backend_image"
PATCH
  fi
  if [[ -n "$canary_percent" ]]; then
    cat <<PATCH
  - target: {group: serving.kserve.io, kind: InferenceService, name: circle-detector}
    patch: |-
      - op: replace
        path: /spec/predictor/canaryTrafficPercent
        value: $canary_percent
PATCH
  fi
  if [[ -n "$storage_class" ]]; then
    cat <<PATCH
  - target: {kind: PersistentVolumeClaim, name: circle-detector-backend-data}
    patch: |-
      - op: add
        path: /spec/storageClassName
        value: "$storage_class"
PATCH
  fi
} >"$work/kustomization.yaml"
sed -i '/^patches:$/{N;/^patches:\n$/d}' "$work/kustomization.yaml"
if [[ -z "$storage_class" ]]; then
  "${kustomize[@]}" "$work"
  exit
fi
# A patch whose target is missing is silently dropped: say so instead.
rendered="$("${kustomize[@]}" "$work")"
grep -q '^kind: PersistentVolumeClaim$' <<<"$rendered" ||
  die "--storage-class: overlay $overlay has no PersistentVolumeClaim (its uploads are in object storage)"
printf '%s\n' "$rendered"
