#!/usr/bin/env bash
# The README's test command. Installs what the tests need on a fresh machine (the partition
# tests put nodes in network namespaces with iproute2 and cut links with nftables; they run as
# root), then runs every test of the workspace. Extra arguments go to `cargo test`.
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

cargo test --locked --workspace "$@"
