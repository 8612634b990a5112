#!/usr/bin/env bash
# Coverage-guided fuzzing of everything that reads bytes from outside a node (see
# docs/FUZZING.md): builds the targets of fuzz/ with cargo-fuzz (libFuzzer) on the pinned
# stable toolchain, replays every reproducer kept in fuzz/regressions/, then fuzzes each
# target for a bounded time from the seed corpus in fuzz/corpus/.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   fuzz (default: 600 s, every target)
#   FUZZ_SECS=10 scripts/fuzz.sh                       the short run CI does
#   scripts/fuzz.sh replay                             only replay fuzz/regressions/
#   scripts/fuzz.sh seeds                              rewrite the seed corpus from real values
#   scripts/fuzz.sh list                               the targets
#
# Environment:
#   FUZZ_SECS        seconds per target (the first argument wins)
#   FUZZ_SANITIZER   none (default: the code under test forbids `unsafe`, and without a
#                    sanitizer a target runs several times faster) or address
#   FUZZ_MERGE=1     after the run, merge what added coverage into fuzz/corpus/ (minimised);
#                    review the size before committing it
#   FUZZ_ARGS        more libFuzzer flags for every run (e.g. "-only_ascii=1")
#   CARGO_BUILD_JOBS limits the build's parallelism as usual
#
# Exit status: 0 if nothing crashed; 1 if a regression still fails or a run found a crash (the
# input is in fuzz/artifacts/<target>/: see docs/FUZZING.md for making it a regression).
set -euo pipefail

# The whole script is read before it runs (a block), so editing it meanwhile is safe.
{
cd "$(dirname "$0")/.."
ROOT=$(pwd)

TARGETS=(frame record snapshot app_state app_command ledger http)
# Pinned, so that a fresh machine (CI's) builds the same way.
CARGO_FUZZ_VERSION=0.13.2
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
BIN_DIR="$ROOT/fuzz/target/$TRIPLE/release"
SANITIZER=${FUZZ_SANITIZER:-none}

# The stable toolchain of rust-toolchain.toml, allowed the -Z flags that instrumentation needs.
export RUSTC_BOOTSTRAP=1

mode=fuzz
case "${1:-}" in
    replay | seeds | list) mode=$1; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
esac
if [[ $mode == list ]]; then
    printf '%s\n' "${TARGETS[@]}"
    exit 0
fi

secs=${FUZZ_SECS:-600}
if [[ $mode == fuzz && ${1:-} =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi
if (($# > 0)); then
    for t in "$@"; do
        [[ " ${TARGETS[*]} " == *" $t "* ]] || { echo "no fuzz target named $t (scripts/fuzz.sh list)" >&2; exit 2; }
    done
    TARGETS=("$@")
fi

log() { printf '\n=== %s\n' "$*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

log "building the fuzz targets (sanitizer: $SANITIZER)"
started=$(date +%s)
# Every target and the seed writer in one build (they share every dependency).
cargo fuzz build --sanitizer "$SANITIZER"
log "built in $(($(date +%s) - started)) s"

if [[ $mode == seeds ]]; then
    rm -rf fuzz/corpus
    "$BIN_DIR/seed_corpus" fuzz/corpus
    du -sh fuzz/corpus
    exit 0
fi

failed=()

# Every reproducer kept in fuzz/regressions/<target>/ must now pass: libFuzzer runs each file
# given to it once, and exits non-zero on a crash.
for t in "${TARGETS[@]}"; do
    dir=fuzz/regressions/$t
    [[ -d $dir ]] || continue
    mapfile -t files < <(find "$dir" -type f ! -name '*.md' | sort)
    ((${#files[@]} > 0)) || continue
    log "replaying ${#files[@]} regression input(s) of $t"
    for f in "${files[@]}"; do
        # One at a time: libFuzzer stops at the first input that crashes.
        replay_log=fuzz/target/replay-$t-$(basename "$f").log
        if env -u SYNOD_FUZZ_SKIP_KNOWN "$BIN_DIR/$t" -timeout=60 -rss_limit_mb=1024 "$f" >"$replay_log" 2>&1; then
            echo "passes: $f"
        else
            echo "FAILS:  $f"
            grep -E -m 3 'panicked|memory allocation|ERROR: libFuzzer' -A 1 "$replay_log" || true
            failed+=("$t: $f (regression replay: $replay_log)")
        fi
    done
done
if [[ $mode == replay ]]; then
    if ((${#failed[@]} > 0)); then
        printf 'FAILED: %s\n' "${failed[@]}"
        exit 1
    fi
    echo "every regression input passes"
    exit 0
fi

summary=()
for t in "${TARGETS[@]}"; do
    work=fuzz/target/corpus/$t
    artifacts=fuzz/artifacts/$t/
    mkdir -p "$work" "$artifacts"
    dict=()
    [[ -f fuzz/dict/$t.dict ]] && dict=(-dict="fuzz/dict/$t.dict")
    log "fuzzing $t for $secs s"
    out=fuzz/target/fuzz-$t.log
    # New inputs go to the working corpus (first directory); the seeds are only read. The
    # targets steer around the open findings (the reproducers replayed above), so that a run
    # finds something new rather than the same crash again.
    # shellcheck disable=SC2086
    if SYNOD_FUZZ_SKIP_KNOWN=1 "$BIN_DIR/$t" -max_total_time="$secs" -timeout=60 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="$artifacts" "${dict[@]}" ${FUZZ_ARGS:-} \
        "$work" "fuzz/corpus/$t" >"$out" 2>&1; then
        status=ok
    else
        status=CRASH
        failed+=("$t (run: $out; input in $artifacts)")
        grep -E -A12 'panicked|ERROR: libFuzzer|SUMMARY' "$out" | head -n 40 || true
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' "$out" | tail -n 1 | cut -d' ' -f2)
    summary+=("$(printf '%-12s %-6s %10s runs %8s exec/s %7s edges' "$t" "$status" "${runs:-?}" "${rate:-?}" "${cov:-?}")")
    tail -n 3 "$out"
    if [[ $t == http ]]; then
        # Its one-node cluster keeps its data in a temporary directory for the life of the
        # process, which libFuzzer ends without dropping it.
        rm -rf /dev/shm/synod-fuzz-http* "${TMPDIR:-/tmp}"/synod-fuzz-http* 2>/dev/null || true
    fi
    if [[ ${FUZZ_MERGE:-0} == 1 ]]; then
        SYNOD_FUZZ_SKIP_KNOWN=1 "$BIN_DIR/$t" -merge=1 -timeout=60 "fuzz/corpus/$t" "$work" >"fuzz/target/merge-$t.log" 2>&1 ||
            echo "merging $t's corpus failed: fuzz/target/merge-$t.log"
    fi
done

log "summary ($secs s per target)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "no crash"
exit 0
}
