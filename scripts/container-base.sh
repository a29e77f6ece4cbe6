#!/usr/bin/env bash
# Build a local Debian base image with debootstrap, since no container registry is reachable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

BASE_IMAGE="${BASE_IMAGE:-localhost/circle-base:bookworm}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="${BASE_PACKAGES:-python3,python3-venv,ca-certificates,libgomp1,libglib2.0-0}"

usage() {
  cat <<USAGE
Usage: scripts/container-base.sh [--force] [--help]

Builds the base image that docker/*.Dockerfile start FROM when no registry is reachable:
Debian ${SUITE} (debootstrap --variant=minbase) with Python 3.11, imported into the local
containers storage (shared by buildah and podman). Idempotent: does nothing when the image exists.
Needs root, debootstrap and podman.

  --force   rebuild even if the image exists

Environment (defaults):
  BASE_IMAGE     ${BASE_IMAGE}
  DEBIAN_SUITE   ${SUITE}
  DEBIAN_MIRROR  ${MIRROR}
  BASE_PACKAGES  ${PACKAGES}
USAGE
}

force=0
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --force) force=1 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done

need debootstrap "apt-get install -y debootstrap"
need podman "apt-get install -y podman"
[[ $(id -u) -eq 0 ]] || die "debootstrap needs root"

if [[ $force -eq 0 ]] && podman image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE already exists (use --force to rebuild)"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "debootstrap $SUITE into $work/rootfs (packages: $PACKAGES)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" \
  >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
# What a server image never reads: translations, manuals, docs (licences kept), glibc's iconv
# converters (Python has its own codecs), about 60 MB.
rm -rf "$work"/rootfs/usr/share/{locale,man,info}/* "$work"/rootfs/usr/lib/x86_64-linux-gnu/gconv
find "$work/rootfs/usr/share/doc" -type f ! -name copyright -delete
log "importing into $BASE_IMAGE"
tar -C "$work/rootfs" -c . | podman import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
log "done: $(podman image inspect --format '{{.Id}} {{.Size}}' "$BASE_IMAGE")"
