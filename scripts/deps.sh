#!/usr/bin/env bash
# Installs the system packages the build and the tests need, where missing (Debian's apt):
#   iproute2, nftables   partitions: nodes in network namespaces, links cut with nftables
#   protobuf-compiler    protoc, which builds the etcd v3 API's protobuf definitions (the
#                        etcd-client crate's, client and server)
#   etcd-server          a real etcd 3.4: the etcd conformance test answers against it
#   etcd-client          etcdctl, to drive both the same way
# Called by scripts/test.sh (the README's test command) and by .ci/run before it lints.
set -euo pipefail

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "missing ${need[*]} and no apt-get to install them" >&2
    exit 1
  fi
  echo "installing ${need[*]}"
  (apt-get install -y -qq "${need[@]}" >/dev/null 2>&1) ||
    (apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null)
fi
