#!/usr/bin/env bash
# CI stage: the stress suite (tests/stress.rs), short scale, release mode.
#
#   bash ci/stress.sh                          # CI: RINGPOOL_STRESS=short
#   RINGPOOL_STRESS=long bash ci/stress.sh     # by hand: millions of
#                                              # ping-pongs per mechanism
#   RINGPOOL_SEED=<n> bash ci/stress.sh        # replay a run
#
# A lost wakeup or hang fails the run through a 60 s no-progress watchdog
# that names the mechanism, the progress made and the pool's stats.
set -euo pipefail
cd "$(dirname "$0")/.."

stage_start=$SECONDS
log() { printf '[stress %4ds] %s\n' "$((SECONDS - stage_start))" "$*"; }

export RINGPOOL_STRESS="${RINGPOOL_STRESS:-short}"
# The mechanism under test comes from the tests, not the caller's shell.
unset RINGPOOL_HANDOFF RINGPOOL_UNSUPPORTED

log "building tests/stress.rs (release)"
cargo test --release -p ringpool --test stress --no-run
log "running, RINGPOOL_STRESS=$RINGPOOL_STRESS"
cargo test --release -p ringpool --test stress -- --nocapture --test-threads=1
log "done in $((SECONDS - stage_start)) s"
