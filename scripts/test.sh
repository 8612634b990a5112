#!/usr/bin/env bash
# The README's test command. Installs what the tests need on a fresh machine (the partition
# tests put nodes in network namespaces with iproute2 and cut links with nftables; they run as
# root; the deployment tests need kubernetes-validate from PyPI and podman to build the
# image), builds the container image, then runs every test of the workspace. Extra arguments
# go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "missing ${need[*]} and no apt-get to install them" >&2
    exit 1
  fi
  echo "installing ${need[*]}"
  (apt-get install -y -qq "${need[@]}" >/dev/null 2>&1) ||
    (apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null)
fi

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
