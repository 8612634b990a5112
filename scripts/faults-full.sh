#!/usr/bin/env bash
# The fault scenarios of crates/synod/tests/faults.rs, stretched SCALE times (4 by default:
# about a minute each), one at a time. Needs root (network namespaces, nftables). Reports go to
# target/fault-reports/; copy the figures into docs/RELIABILITY.md.
#
#   scripts/faults-full.sh          # SCALE=4
set -euo pipefail
cd "$(dirname "$0")/.."
SYNOD_FAULTS_SCALE=${SCALE:-4} cargo test --locked -p synod --test faults -- --nocapture --test-threads 1
ls target/fault-reports/*.md
