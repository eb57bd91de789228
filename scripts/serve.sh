#!/usr/bin/env bash
# Install registry-appliance into ./.venv (Debian: installs python3-venv if missing) and run it.
# With no arguments it serves on embedded defaults: https on :5000, certificates generated on
# first start, data under ~/.local/share/registry-appliance (or /var/lib/registry as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_apt python3-venv python3-pip
ensure_venv .
exec .venv/bin/registry-appliance serve "$@"
