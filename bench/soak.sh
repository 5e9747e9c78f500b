#!/usr/bin/env bash
# Soak: `ringpool serve` under a mixed wrk load for MINUTES (default 3),
# sampling the server's RSS and open fds every 10 s. Passes if, after the
# first minute's warm-up, RSS grows by less than 10% and the fd count ends
# where the load's connections leave it (no leak).
#
#   bash bench/soak.sh                 # 3 minutes
#   MINUTES=10 bash bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${MINUTES:-3}"
PORT="${PORT:-18484}"
BIN="${CARGO_TARGET_DIR:-target}/release/ringpool"
command -v wrk >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p ringpool-cli
TMP="$(mktemp -d /tmp/ringpool-soak.XXXXXX)"
"$BIN" serve --addr "127.0.0.1:$PORT" --workers 1 2>"$TMP/serve.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 0.1; done
cat >"$TMP/mix.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  if n % 10 == 0 then
    return wrk.format("POST", "/hash", nil, string.rep("x", 4096))
  elseif n % 97 == 0 then
    return wrk.format("POST", "/compress", nil, string.rep("abc", 2000))
  elseif n % 501 == 0 then
    return wrk.format("GET", "/nope")
  end
  return wrk.format("GET", "/health")
end
LUA
secs=$((MINUTES * 60))
# Connections come and go too: wrk with short runs in a loop, 32 connections.
(
    end=$((SECONDS + secs))
    while ((SECONDS < end)); do
        wrk -t1 -c32 -d10s -s "$TMP/mix.lua" "http://127.0.0.1:$PORT/" >>"$TMP/wrk.log" 2>&1 || true
    done
) &
printf '%6s %10s %6s\n' "t s" "RSS KiB" "fds"
samples=()
t0=$SECONDS
while ((SECONDS - t0 < secs)); do
    sleep 10
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    printf '%6d %10d %6d\n' "$((SECONDS - t0))" "$rss" "$fds"
    samples+=("$rss")
done
wait "$(jobs -p | tail -1)" 2>/dev/null || true
sleep 1
fds_end=$(ls "/proc/$pid/fd" | wc -l)
reqs=$(awk '/requests in/ {s += $1} END {print s}' "$TMP/wrk.log")
errs=$(grep -c "Non-2xx\|Socket errors" "$TMP/wrk.log" || true)
echo "requests: $reqs; wrk runs reporting non-2xx or socket errors: $errs (the /nope requests are 404s)"
echo "fds at the end, load stopped: $fds_end"
warm=${samples[5]:-${samples[0]}}
last=${samples[-1]}
echo "RSS after warm-up ${warm} KiB, at the end ${last} KiB"
kill -TERM "$pid"; wait "$pid"; rc=$?
trap - EXIT
if ((last * 10 > warm * 11)); then echo "FAIL: RSS grew by more than 10%"; exit 1; fi
if ((fds_end > 40)); then echo "FAIL: $fds_end fds open with no load"; exit 1; fi
echo "ok: flat RSS, no fd leak, exit $rc after SIGTERM"
