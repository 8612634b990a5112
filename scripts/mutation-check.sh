#!/usr/bin/env bash
# Tests the testers: builds the simulator with each planted bug in turn and runs the CI seeds
# (0..1024, as `cargo test` does) until one fails. Every bug must be caught; the script prints
# the first failing seed and how many of the seeds catch it.
#
#   scripts/mutation-check.sh            # all mutations
#   SEEDS=256 scripts/mutation-check.sh  # fewer seeds
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-1024}
target=target/mutation
mutations=(
  "synod-core/mutation-quorum-minus-one|decide with one fewer than a quorum"
  "synod-core/mutation-accept-ignores-promise|accept without checking the promise"
  "synod-core/mutation-forget-promise|forget the promise on restart"
  "synod-core/mutation-takeover-ignores-accepted|take over a slot ignoring an accepted value"
  "synod-sim/mutation-ack-before-persist|send and apply before the records are durable"
)
missed=0
printf '%-50s %12s %14s\n' "planted bug" "first seed" "seeds failing"
for m in "${mutations[@]}"; do
  feature=${m%%|*}
  what=${m#*|}
  cargo build --quiet --locked --release -p synod-sim --features "$feature" --target-dir "$target"
  out=$("$target/release/synod-sim" soak --start 0 --seeds "$seeds" 2>&1 || true)
  first=$(grep -m1 -oE '^seed [0-9]+ FAILED' <<<"$out" | grep -oE '[0-9]+' || true)
  failing=$(grep -cE '^seed [0-9]+ FAILED' <<<"$out" || true)
  printf '%-50s %12s %14s\n' "$what" "${first:-none}" "$failing/$seeds"
  if [ -z "$first" ]; then
    missed=$((missed + 1))
  fi
done
if [ "$missed" -ne 0 ]; then
  echo "$missed planted bug(s) went unnoticed: the simulator's checks are too weak" >&2
  exit 1
fi
echo "every planted bug was caught"
