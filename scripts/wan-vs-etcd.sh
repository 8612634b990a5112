#!/usr/bin/env bash
# WAN emulation, side by side: three sites with a one-way delay of DELAY_MS (50 by default)
# between every pair, made by `synod delay-proxy` (this kernel has no netem; one proxy per
# destination node, so every message between two nodes waits DELAY_MS). A 3-node etcd 3.4 and a
# 3-node Synod run in turn with all peer traffic through the proxies. From each site, one
# client (../shared/bench/loadgen, closed loop, 256-byte values) writes to its local node; the
# commit latency it sees is what a user at that site gets.
#
# Leader-based etcd: a write at a follower goes to the leader and back (one extra WAN round
# trip). Leaderless Synod: a write commits in one round trip to the nearest quorum from any site.
#
#   scripts/wan-vs-etcd.sh               # SECS=8 per site, DELAY_MS=50
set -euo pipefail
cd "$(dirname "$0")/.."
bench=$(cd ../shared/bench && pwd)
secs=${SECS:-8}
delay=${DELAY_MS:-50}
export CARGO_TARGET_DIR_LG=${CARGO_TARGET_DIR_LG:-/tmp/loadgen-target}
command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null; }
command -v etcd >/dev/null || { apt-get update -qq && apt-get install -y -qq etcd-server etcd-client >/dev/null; }
CARGO_TARGET_DIR=$CARGO_TARGET_DIR_LG cargo build -q --release --manifest-path "$bench/loadgen/Cargo.toml"
lg=$CARGO_TARGET_DIR_LG/release/loadgen
cargo build -q --release -p synod
synod=$PWD/target/release/synod
work=$(mktemp -d /tmp/synod-wan-XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== etcd 3.4 (leader-based), 3 sites, ${delay} ms one-way between sites"
"$synod" delay-proxy --delay-ms "$delay" \
  --route 127.0.0.1:12390=127.0.0.1:12380 --route 127.0.0.1:22390=127.0.0.1:22380 \
  --route 127.0.0.1:32390=127.0.0.1:32380 >"$work/etcd-proxy.log" 2>&1 &
pids+=($!)
cluster="e1=http://127.0.0.1:12390,e2=http://127.0.0.1:22390,e3=http://127.0.0.1:32390"
for i in 1 2 3; do
  etcd --name e$i --data-dir "$work/e$i" \
    --listen-client-urls http://127.0.0.1:${i}2379 --advertise-client-urls http://127.0.0.1:${i}2379 \
    --listen-peer-urls http://127.0.0.1:${i}2380 --initial-advertise-peer-urls http://127.0.0.1:${i}2390 \
    --initial-cluster "$cluster" --initial-cluster-token wan --initial-cluster-state new \
    --heartbeat-interval 100 --election-timeout 1000 --log-level error >"$work/e$i.log" 2>&1 &
  pids+=($!)
done
eps=127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379
for _ in $(seq 100); do etcdctl --endpoints=$eps endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
leader=$(etcdctl --endpoints=$eps endpoint status | awk -F', ' '$5=="true"{print $1}')
for i in 1 2 3; do
  role=follower; [ "$leader" = "127.0.0.1:${i}2379" ] && role=leader
  echo -n "etcd  site $i ($role): "
  $lg --clients 1 --secs "$secs" etcd --endpoints 127.0.0.1:${i}2379
done
echo "etcd  all three sites at once:"
for i in 1 2 3; do $lg --clients 1 --secs "$secs" etcd --endpoints 127.0.0.1:${i}2379 >"$work/etcd-all-$i.out" 2>&1 & done
wait_all() { for f in "$@"; do while ! grep -q ops= "$f" 2>/dev/null; do sleep 0.2; done; done; }
wait_all "$work"/etcd-all-{1,2,3}.out
for i in 1 2 3; do echo -n "  site $i: "; grep ops= "$work/etcd-all-$i.out"; done
cleanup; pids=()

echo "== synod (leaderless), 3 sites, ${delay} ms one-way between sites"
"$synod" certs --out "$work/certs" --nodes 0,1,2 >/dev/null
routes=()
for i in 0 1 2; do routes+=(--route "127.0.0.1:$((17100 + i))=127.0.0.1:$((17000 + i))"); done
"$synod" delay-proxy --delay-ms "$delay" "${routes[@]}" >"$work/synod-proxy.log" 2>&1 &
pids+=($!)
for i in 0 1 2; do
  {
    echo "node = $i"
    echo "data_dir = \"$work/n$i\""
    echo "listen_peer = \"127.0.0.1:$((17000 + i))\""
    echo "listen_api = \"127.0.0.1:$((18000 + i))\""
    echo "members = [0, 1, 2]"
    echo "insecure_plaintext_api = true"
    # Take-over waits must exceed a WAN round trip, or live owners lose their slots.
    echo "takeover_ms = $((delay * 6))"
    echo "[peers]"
    for j in 0 1 2; do [ "$j" = "$i" ] || echo "\"$j\" = \"127.0.0.1:$((17100 + j))\""; done
    echo "[tls]"
    echo "ca = \"$work/certs/ca.pem\""
    echo "cert = \"$work/certs/node-$i.pem\""
    echo "key = \"$work/certs/node-$i.key\""
  } >"$work/node-$i.toml"
  "$synod" start --config "$work/node-$i.toml" >"$work/node-$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((18000 + i))/health" >/dev/null && break; sleep 0.1; done
done
# Warm up: connections established, first slots decided.
$lg --clients 1 --secs 2 http --urls http://127.0.0.1:18000 >/dev/null 2>&1 || true
for i in 0 1 2; do
  echo -n "synod site $((i + 1)): "
  $lg --clients 1 --secs "$secs" http --urls "http://127.0.0.1:$((18000 + i))"
done
echo "synod all three sites at once:"
for i in 0 1 2; do
  $lg --clients 1 --secs "$secs" http --urls "http://127.0.0.1:$((18000 + i))" >"$work/synod-all-$i.out" 2>&1 &
done
wait_all "$work"/synod-all-{0,1,2}.out
for i in 0 1 2; do echo -n "  site $((i + 1)): "; grep ops= "$work/synod-all-$i.out"; done
