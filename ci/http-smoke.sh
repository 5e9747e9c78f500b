#!/usr/bin/env bash
# CI stage: `ringpool serve` answers curl on every endpoint, drains on
# SIGTERM with exit 0, and survives the HTTP load test's smoke run (wrk and
# h2load against it and the hyper peers, 2 s a run). Installs curl, wrk and
# nghttp2-client (h2load) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[http-smoke] %s\n' "$*"; }
need=()
command -v curl >/dev/null || need+=(curl)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
if [[ ${#need[@]} -gt 0 ]]; then
    log "installing ${need[*]}"
    apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p ringpool-cli
BIN="${CARGO_TARGET_DIR:-target}/release/ringpool"
PORT=18181
"$BIN" serve --addr "127.0.0.1:$PORT" --workers 1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 0.1; done
check() { # method path body expected-status expected-body-substring
    local out code
    out=$(curl -s -X "$1" --data-binary "$3" -w '\n%{http_code}' "http://127.0.0.1:$PORT$2")
    code=${out##*$'\n'}
    [[ $code == "$4" && $out == *"$5"* ]] || { log "FAILED: $1 $2 -> $code: $out"; exit 1; }
    log "ok: $1 $2 -> $code"
}
check GET /health "" 200 ok
check POST /hash "hello" 200 ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f
check POST /password/verify "ringpool" 200 '{"ok":true}'
check POST /password/verify "nope" 200 '{"ok":false}'
check GET /stats "" 200 '"handoff"'
check GET /nope "" 404 ""
check POST /health "" 405 ""
kill -TERM "$pid"
wait "$pid" && log "ok: SIGTERM drained, exit 0" || { log "FAILED: exit $? after SIGTERM"; exit 1; }
trap - EXIT
bash bench/http.sh --smoke
