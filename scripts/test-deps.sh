#!/usr/bin/env bash
# System packages and services the test suite needs beyond the Python environment (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# The PostgreSQL tests connect over 127.0.0.1 without a password, as the machine's own cluster does.
ver=$(ls /etc/postgresql | sort -V | tail -1)
hba=/etc/postgresql/$ver/main/pg_hba.conf
if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
  sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main restart || true
fi
pg_ctlcluster --skip-systemctl-redirect "$ver" main status >/dev/null 2>&1 ||
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start

bash scripts/install-browser.sh
bash scripts/install-kustomize.sh
