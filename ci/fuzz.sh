#!/usr/bin/env bash
# CI stage: libFuzzer over ringpool's public API (fuzz/, target api_sequence) and
# ringpool-server's HTTP/1.1 framing (target http_conn).
#
#   bash ci/fuzz.sh                          # 30 s of fuzzing per target (CI)
#   FUZZ_SECONDS=600 bash ci/fuzz.sh         # longer, by hand
#   FUZZ_TARGETS=http_conn bash ci/fuzz.sh   # one target
#
# The fuzz crate is its own workspace (fuzz/Cargo.toml has a [workspace]
# table), so the root crate's builds never see it. The seed corpus in
# fuzz/corpus/<target> is copied to a scratch corpus so that CI runs do
# not grow the committed one. LeakSanitizer is on: a LoopHandle dropped
# without its ring cancels its armed SQEs synchronously and frees what they
# referenced, so nothing may leak.
set -euo pipefail
cd "$(dirname "$0")/.."

stage_start=$SECONDS
log() { printf '[fuzz %4ds] %s\n' "$((SECONDS - stage_start))" "$*"; }

TARGETS="${FUZZ_TARGETS:-api_sequence http_conn}"
SECS="${FUZZ_SECONDS:-30}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/fuzz}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

for TARGET in $TARGETS; do
    work="$CARGO_TARGET_DIR/corpus/$TARGET"
    mkdir -p "$work"
    cp -n fuzz/corpus/$TARGET/* "$work/" 2>/dev/null || true

    log "building $TARGET (libFuzzer, ASan, release + debug assertions)"
    (cd fuzz && cargo fuzz build "$TARGET")
    log "fuzzing $TARGET for ${SECS}s"
    set +e
    (cd fuzz && cargo fuzz run "$TARGET" "$work" -- \
        -max_total_time="$SECS" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1) \
        >"$CARGO_TARGET_DIR/fuzz-$TARGET.log" 2>&1
    rc=$?
    set -e
    grep -E '^#[0-9]+ *(INITED|DONE)|stat::number_of_executed_units|stat::average_exec_per_sec' \
        "$CARGO_TARGET_DIR/fuzz-$TARGET.log" || true
    if [[ $rc -ne 0 ]]; then
        log "FAILED (exit $rc); log: $CARGO_TARGET_DIR/fuzz-$TARGET.log; crash inputs in fuzz/artifacts/$TARGET"
        tail -n 60 "$CARGO_TARGET_DIR/fuzz-$TARGET.log"
        exit 1
    fi
done
log "done in $((SECONDS - stage_start)) s"
