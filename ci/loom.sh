#!/usr/bin/env bash
# CI stage: loom models of the worker sleep/wake (src/pool/park.rs) and
# loop doorbell (src/pool/doorbell.rs) protocols, on the real code compiled
# against loom's primitives (the cfg(loom) shim in src/sync.rs).
#
#   bash ci/loom.sh                       # CI bound
#   LOOM_MAX_PREEMPTIONS=4 bash ci/loom.sh  # deeper, slower
set -euo pipefail
cd "$(dirname "$0")/.."

stage_start=$SECONDS
log() { printf '[loom %4ds] %s\n' "$((SECONDS - stage_start))" "$*"; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/loom}"
export RUSTFLAGS="--cfg loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
# Print the failing interleaving's location on a failure.
export LOOM_LOCATION=1

log "building tests/loom.rs with --cfg loom (release)"
cargo test --release -p ringpool --test loom --no-run
log "running the models, LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS"
cargo test --release -p ringpool --test loom -- --test-threads=2
log "done in $((SECONDS - stage_start)) s"
