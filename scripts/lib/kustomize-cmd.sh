#!/usr/bin/env bash
# Print the command that renders a kustomization (for tools outside bash, e.g. the tests).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
kustomize_cmd
