#!/usr/bin/env bash
# CPU per acknowledged write, all nodes together, for a 3-node etcd 3.4 and a 3-node Synod
# (`synod dev`: separate processes, mutual TLS between them, fsync on) in the same run, both
# on loopback and driven by ../shared/bench/loadgen (closed loop, 256-byte values; Synod's
# API in plaintext because loadgen speaks plain HTTP, as etcd's is measured without TLS).
# CPU is the processes' user plus system time from /proc/<pid>/stat over the load, divided by
# the writes acknowledged meanwhile; the load generator's own CPU is not counted.
# With PROFILE=1, each system is also sampled with `perf record -e cpu-clock` (the only event
# these machines allow) and the top symbols are printed; perf.data files stay in $OUT.
#
#   scripts/bench-cpu-per-write.sh                     # CLIENTS=64 SECS=8
#   CLIENTS="1 64 256" PROFILE=1 scripts/bench-cpu-per-write.sh
#   SYNOD=/path/to/synod scripts/bench-cpu-per-write.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bench=$(cd ../shared/bench && pwd)
secs=${SECS:-8}
clients=${CLIENTS:-64}
profile=${PROFILE:-0}
out=${OUT:-$(mktemp -d /tmp/synod-cpu-XXXX)}
mkdir -p "$out"
export CARGO_TARGET_DIR_LG=${CARGO_TARGET_DIR_LG:-/tmp/loadgen-target}
command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null; }
if [ "$profile" = 1 ]; then
  command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; }
fi
CARGO_TARGET_DIR=$CARGO_TARGET_DIR_LG cargo build -q --release --manifest-path "$bench/loadgen/Cargo.toml"
lg=$CARGO_TARGET_DIR_LG/release/loadgen
if [ -z "${SYNOD:-}" ]; then
  cargo build -q --release -p synod
  SYNOD=target/release/synod
fi

# Seconds of CPU (user + system) the given pids have used so far.
cpu() {
  python3 - "$@" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
total = 0
for pid in sys.argv[1:]:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    total += int(fields[11]) + int(fields[12])
print(total / tick)
PY
}

# measure NAME "PIDS" CLIENTS LOADGEN-ARGS...: one loadgen run, with CPU per write.
measure() {
  local name=$1 pids=$2 c=$3
  shift 3
  local perf_pid=""
  if [ "$profile" = 1 ]; then
    perf record -q -e cpu-clock -F 499 -o "$out/$name-$c.perf.data" \
      -p "$(tr ' ' ',' <<<"$pids")" -- sleep "$secs" 2>/dev/null &
    perf_pid=$!
  fi
  local before after result ops
  before=$(cpu $pids)
  result=$($lg --clients "$c" --secs "$secs" "$@")
  after=$(cpu $pids)
  [ -n "$perf_pid" ] && wait "$perf_pid" || true
  ops=$(grep -oE 'ops=[0-9]+' <<<"$result" | head -1 | cut -d= -f2)
  python3 -c "
cpu = $after - $before
print(f'$name clients=$c: {cpu * 1e6 / max($ops, 1):7.0f} us CPU per write ({cpu:.1f} s CPU, $ops writes)  $(grep -oE 'ops_per_s=[^ ]+ p50_ms=[^ ]+ p99_ms=[^ ]+' <<<"$result")')"
}

echo "== etcd 3.4, 3 nodes on loopback"
eps=$("$bench/etcd-cluster.sh" start)
etcd_pids=$(cat /tmp/etcd-bench/e*.pid | paste -sd' ')
for c in $clients; do measure etcd "$etcd_pids" "$c" etcd --endpoints "$eps"; done
"$bench/etcd-cluster.sh" stop

echo "== synod, 3 nodes on loopback"
data=$(mktemp -d /tmp/synod-cpu-data-XXXX)
"$SYNOD" dev --insecure-plaintext-api --data "$data" >"$data/dev.out" 2>&1 &
dev=$!
trap 'kill -INT $dev 2>/dev/null || true; wait $dev 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 200); do [ -f "$data/cluster.json" ] && grep -q "nodes up" "$data/dev.out" && break; sleep 0.1; done
urls=$(python3 -c "import json;print(','.join(n['api'] for n in json.load(open('$data/cluster.json'))['nodes']))")
synod_pids=$(python3 -c "import json;print(' '.join(str(n['pid']) for n in json.load(open('$data/cluster.json'))['nodes']))")
for c in $clients; do measure synod "$synod_pids" "$c" http --urls "$urls"; done

if [ "$profile" = 1 ]; then
  for f in "$out"/*.perf.data; do
    echo "== top symbols, $(basename "$f" .perf.data) (self time, cpu-clock samples)"
    perf report -q -i "$f" --no-children --sort dso,symbol --percent-limit 1.5 --stdio 2>/dev/null \
      | grep -vE '^$|^#' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' | head -25
  done
  echo "perf data in $out"
fi
