#!/usr/bin/env bash
# Install what the tests need on Debian (apt packages and a venv), then run pytest.
# Arguments go to pytest: `scripts/test.sh -m "not e2e"` runs the fast set only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_apt python3-venv python3-pip docker.io skopeo podman buildah docker-registry \
  apache2-utils openssl curl ca-certificates uidmap systemd binutils \
  etcd-server etcd-client nginx tmux sslscan \
  swift swift-proxy swift-object swift-container swift-account memcached
ensure_venv '.[test]'
exec .venv/bin/pytest "$@"
