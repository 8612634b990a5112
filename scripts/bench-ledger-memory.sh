#!/usr/bin/env bash
# Memory while a ledger channel grows: commits TOTAL transactions (1,000,000) to one channel
# on a 3-node `synod dev` cluster (separate processes, fsync on), STEP (100,000) at a time,
# and after each step prints every node's resident memory (VmRSS), the data directories'
# size and the step's throughput. Ends with the growth per transaction after the first step
# (the goal: at most 0.1 KB per transaction per node).
#
#   scripts/bench-ledger-memory.sh                 # TOTAL=1000000 STEP=100000 CLIENTS=64
#   TOTAL=200000 STEP=50000 scripts/bench-ledger-memory.sh
#   SYNOD=/path/to/synod scripts/bench-ledger-memory.sh   # a binary built elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
total=${TOTAL:-1000000}
step=${STEP:-100000}
clients=${CLIENTS:-64}
if [ -z "${SYNOD:-}" ]; then
  cargo build -q --release -p synod
  SYNOD=target/release/synod
fi
data=$(mktemp -d /tmp/synod-ledger-memory-XXXX)
"$SYNOD" dev --insecure-plaintext-api --data "$data" >"$data/dev.out" 2>&1 &
dev=$!
trap 'kill -INT $dev 2>/dev/null || true; wait $dev 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 200); do [ -f "$data/cluster.json" ] && grep -q "nodes up" "$data/dev.out" && break; sleep 0.1; done
urls=$(python3 -c "import json;print(','.join(n['api'] for n in json.load(open('$data/cluster.json'))['nodes']))")
nodes=$(pgrep -P $dev | sort -n)
rss() { for p in $nodes; do awk '/VmRSS/{print $2}' /proc/"$p"/status; done | paste -sd' '; }
printf '%-10s %-26s %-10s %s\n' committed 'rss_kb (node 0, 1, 2)' disk_mb tx_per_s
samples=$data/samples
printf '0 %s\n' "$(rss)" >"$samples"
for ((done = 0; done < total; done += step)); do
  out=$("$SYNOD" ledger-bench --nodes "$urls" --mode tx --clients "$clients" --secs 1000000 \
    --max-txs "$step" --first-id "$done" --channel growth --batch-timeout-ms 200)
  rate=$(python3 -c "import json,sys;print('%.0f' % json.loads(sys.argv[1].splitlines()[-1])['per_second'])" "$out")
  r=$(rss)
  printf '%-10s %-26s %-10s %s\n' $((done + step)) "$r" $(($(du -sk "$data" | cut -f1) / 1024)) "$rate"
  printf '%s %s\n' $((done + step)) "$r" >>"$samples"
done
python3 - "$samples" "$step" <<'PY'
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
step = int(sys.argv[2])
first = next(r for r in rows if r[0] == step)
last = rows[-1]
if last[0] > first[0]:
    per = [(b - a) * 1024 / (last[0] - first[0]) for a, b in zip(first[1:], last[1:])]
    print("growth after the first %d transactions, bytes per transaction: %s (goal: at most 100)"
          % (step, ", ".join("node %d %.1f" % (i, p) for i, p in enumerate(per))))
PY
