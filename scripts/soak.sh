#!/usr/bin/env bash
# Long simulator soak: N random seeds (default 100000) from a random start; prints every
# failing seed with the command that replays it. Keep failing seeds in
# crates/testing/sim/sim-regressions.txt once fixed.
#
#   scripts/soak.sh [N] [START]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
cargo build --quiet --locked --release -p synod-sim
if [ $# -ge 2 ]; then
  exec target/release/synod-sim soak --seeds "$n" --start "$2"
fi
exec target/release/synod-sim soak --seeds "$n"
