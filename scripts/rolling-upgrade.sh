#!/usr/bin/env bash
# A rolling upgrade from an older commit's build to this one, under load, as a fault scenario
# (crates/synod/tests/faults.rs, `a_rolling_upgrade_under_load_loses_nothing_acknowledged`):
# the cluster starts on FROM_REF's binary; each node in turn is stopped with SIGTERM and
# started on this build, the next only once the upgraded one is ready; the history must stay
# linearizable with nothing acknowledged lost, and the stall of each step is printed.
#
#   scripts/rolling-upgrade.sh [FROM_REF]    # default: 76ac7e7, the last commit before peer
#                                            # names and the probes' listener
#   SYNOD_UPGRADE_TO=target/image/synod scripts/rolling-upgrade.sh   # to the image's binary
#
# FROM_REF is built once (release) into target/upgrade-from/REF; runs as root (namespaces).
# CI runs the same scenario from this build to the image's binary (scripts/test.sh); this
# script, which builds a second tree, is run by hand before a release.
set -euo pipefail
cd "$(dirname "$0")/.."

from_ref=${1:-76ac7e7}
commit=$(git rev-parse --verify "$from_ref^{commit}")
dir="target/upgrade-from/$commit"
if [ ! -x "$dir/synod" ]; then
  rm -rf "$dir/src"
  mkdir -p "$dir/src"
  git archive "$commit" | tar -x -C "$dir/src"
  (cd "$dir/src" && cargo build --locked --release -p synod --target-dir ../target)
  cp "$dir/target/release/synod" "$dir/synod"
fi
echo "upgrading from $from_ref ($commit): $dir/synod"
SYNOD_UPGRADE_FROM="$PWD/$dir/synod" \
  cargo test --locked -p synod --test faults -- a_rolling_upgrade --nocapture
