#!/usr/bin/env bash
# A ledger channel's transactions per second (ordered, validated, committed) and a notary's
# notarisations per second with 1 and 4 inputs, on a 3-node `synod dev` cluster (separate
# processes, fsync on, plain-HTTP API, peers over mutual TLS), with latency percentiles.
#
#   scripts/bench-ledger.sh            # SECS=8 per run, CLIENTS=16 by default
#   SYNOD=/path/to/synod scripts/bench-ledger.sh   # a binary built elsewhere (another commit)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-8}
clients=${CLIENTS:-16}
synod=${SYNOD:-}
if [ -z "$synod" ]; then
  cargo build -q --release -p synod
  synod=target/release/synod
fi
data=$(mktemp -d /tmp/synod-ledger-bench-XXXX)
$synod dev --insecure-plaintext-api --data "$data" >"$data/dev.out" 2>&1 &
dev=$!
trap 'kill -INT $dev 2>/dev/null || true; wait $dev 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 200); do [ -f "$data/cluster.json" ] && grep -q "nodes up" "$data/dev.out" && break; sleep 0.1; done
urls=$(python3 -c "import json;print(','.join(n['api'] for n in json.load(open('$data/cluster.json'))['nodes']))")
# CPU time (user + system, clock ticks) of the three node processes and `synod dev`.
cpu() { local t=0 f; for p in $(pgrep -P $dev) $dev; do read -r -a f </proc/"$p"/stat; t=$((t + f[13] + f[14])); done; echo $t; }
echo "== ledger channel: $clients clients, ${secs}s"
c0=$(cpu)
out=$($synod ledger-bench --nodes "$urls" --mode tx --clients "$clients" --secs "$secs")
c1=$(cpu)
echo "${out%%$'\n'*}"
n=$(grep -oE '^[0-9]+' <<<"$out" | head -1)
ticks=$(getconf CLK_TCK)
python3 -c "print('CPU per committed transaction, three nodes together: %.0f us' % (($c1 - $c0) * 1e6 / $ticks / $n))"
for inputs in 1 4; do
  echo "== notary, $inputs input(s): $clients clients, ${secs}s"
  out=$($synod ledger-bench --nodes "$urls" --mode notary --inputs "$inputs" --clients "$clients" --secs "$secs")
  echo "${out%%$'\n'*}"
done
