#!/usr/bin/env bash
# Install Debian's headless Chromium for the web page's end-to-end tests (idempotent).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

usage() {
  cat <<USAGE
Usage: scripts/install-browser.sh [--help]

Installs Debian's 'chromium' package with apt-get (as root) unless \$CHROMIUM already runs.
The tests in tests/web/ drive it with Python playwright (executable_path=\$CHROMIUM); no
browser is ever downloaded by playwright itself.

Environment (defaults):
  CHROMIUM  ${CHROMIUM}
USAGE
}

for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done

if [[ -x "$CHROMIUM" ]] && "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; then
  log "chromium already installed: $("$CHROMIUM" --no-sandbox --version 2>/dev/null)"
  exit 0
fi
need apt-get "a Debian or Ubuntu system"
[[ "$(id -u)" -eq 0 ]] || die "installing chromium needs root (apt-get)"
log "installing chromium with apt-get"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
[[ -x "$CHROMIUM" ]] || die "chromium installed but $CHROMIUM is missing (set CHROMIUM)"
log "installed: $("$CHROMIUM" --no-sandbox --version 2>/dev/null)"
