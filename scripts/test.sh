#!/usr/bin/env bash
# The README's test command. Installs what the tests need on a fresh machine (system packages
# in scripts/deps.sh: iproute2 and nftables for the partition tests, which run as root; protoc;
# etcd for the etcd conformance test; the deployment tests need kubernetes-validate from PyPI
# and podman to build the image), builds the container image, then runs every test of the
# workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

# The deployment tests validate the Kubernetes manifests with Kubernetes' own schemas.
if ! command -v kubernetes-validate >/dev/null; then
  echo "installing kubernetes-validate (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.31.0
fi

# The container image (static binary, FROM scratch; installs podman if missing). The rolling
# upgrade scenario restarts each node on the binary taken out of the image, so the image's
# binary runs a cluster (peers by name, resolved without NSS) in every test run.
scripts/image.sh
export SYNOD_UPGRADE_TO="$PWD/target/image/synod"

cargo test --locked --workspace "$@"
