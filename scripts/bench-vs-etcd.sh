#!/usr/bin/env bash
# Side-by-side benchmark: a 3-node etcd 3.4 and a 3-node Synod (`synod dev`, separate
# processes, fsync on), both on loopback, driven by ../shared/bench/loadgen in the same run.
# Prints one line per run: throughput and latency at 1, 16, 64 and 256 clients with 256-byte
# values, then the write stall when one node is killed with SIGKILL under 16 clients.
#
#   scripts/bench-vs-etcd.sh            # SECS=8 per run by default
set -euo pipefail
cd "$(dirname "$0")/.."
bench=$(cd ../shared/bench && pwd)
secs=${SECS:-8}
export CARGO_TARGET_DIR_LG=${CARGO_TARGET_DIR_LG:-/tmp/loadgen-target}
command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null; }
CARGO_TARGET_DIR=$CARGO_TARGET_DIR_LG cargo build -q --release --manifest-path "$bench/loadgen/Cargo.toml"
lg=$CARGO_TARGET_DIR_LG/release/loadgen
cargo build -q --release -p synod
synod=target/release/synod

echo "== etcd 3.4 (leader-based), 3 nodes on loopback"
eps=$("$bench/etcd-cluster.sh" start)
for c in 1 16 64 256; do echo -n "etcd  clients=$c: "; $lg --clients $c --secs "$secs" etcd --endpoints "$eps"; done
eps=$("$bench/etcd-cluster.sh" start)
"$bench/etcd-cluster.sh" leader-pid >/tmp/etcd-bench/leader.pid
echo -n "etcd  kill -9 leader at 4s, clients=16: "
$lg --clients 16 --secs 10 --kill-pid-file /tmp/etcd-bench/leader.pid --kill-at 4 etcd --endpoints "$eps" 2>/dev/null | grep ops=
"$bench/etcd-cluster.sh" stop

echo "== synod (leaderless), 3 nodes on loopback"
run_synod() {
  data=$(mktemp -d /tmp/synod-bench-XXXX)
  # loadgen speaks plain HTTP without client certificates (and etcd is measured without TLS
  # too), so the API is served in plaintext here; peer traffic stays mutual TLS.
  $synod dev --insecure-plaintext-api --data "$data" >"$data/dev.out" 2>&1 &
  dev=$!
  for _ in $(seq 100); do [ -f "$data/cluster.json" ] && grep -q "nodes up" "$data/dev.out" && break; sleep 0.1; done
  urls=$(python3 -c "import json;print(','.join(n['api'] for n in json.load(open('$data/cluster.json'))['nodes']))")
  echo "$data $dev $urls"
}
stop_synod() {
  kill -INT "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
}
read -r data dev urls < <(run_synod)
for c in 1 16 64 256; do echo -n "synod clients=$c: "; $lg --clients $c --secs "$secs" http --urls "$urls"; done
stop_synod "$dev"
# Kill node 2 and drive the two survivors: a client of the dead node has no node to go to
# (the API has no client-side failover yet), while etcd's client library re-dials another
# endpoint, so this measures what the cluster itself does when it loses a member.
read -r data dev urls < <(run_synod)
python3 -c "import json;print(json.load(open('$data/cluster.json'))['nodes'][2]['pid'])" >"$data/victim.pid"
survivors=$(python3 -c "import json;print(','.join(n['api'] for n in json.load(open('$data/cluster.json'))['nodes'][:2]))")
echo -n "synod kill -9 node 2 at 4s, clients=16 on the survivors: "
$lg --clients 16 --secs 10 --kill-pid-file "$data/victim.pid" --kill-at 4 http --urls "$survivors" 2>/dev/null | grep ops=
stop_synod "$dev"
