#!/usr/bin/env bash
# HTTP load test: `ringpool serve` (when it exists) against the tokio/hyper peers
# (ringpool-peers), same routes, same work, loopback only.
#
#   bash bench/http.sh                  # every scenario, SECS (8) seconds a run
#   bash bench/http.sh --smoke          # CI: 2 s, /health only, every contender
#   SECS=20 WORKERS=2 bash bench/http.sh --out results.txt
#   SCENARIOS="isolation" HANDOFFS="auto pipe" PEERS="hyper-blocking" bash bench/http.sh
#   NICES="10 5" HANDOFFS=auto PEERS=hyper-inline bash bench/http.sh   # --worker-nice
#
# Each contender's server runs pinned to CPU 1 (taskset -c 1), the load generator on
# CPU 0, except the one "unpinned" run. Scenarios:
#   closed loop  wrk, 64 connections, --latency: /health, /hash (16 KiB body),
#                /compress (16 KiB), /password/verify
#   open loop    h2load --h1 at fixed request rates on /health (per-request log:
#                percentiles computed here, h2load itself prints only mean/sd)
#   isolation    /password/verify saturating the pool (wrk) while /health runs at a
#                fixed rate (h2load): /health p99 unloaded vs loaded
#   unpinned     wrk /health with neither side pinned
# Server CPU per request: utime+stime deltas of the server's /proc/<pid>/stat over
# each run, divided by the requests the load generator completed.
#
# Needs wrk and h2load (nghttp2-client); installs them with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
OUT=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "http.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

SECS="${SECS:-8}"
WORKERS="${WORKERS:-2}"   # CPU workers (blocking pool / ringpool pool)
THREADS="${THREADS:-1}"   # event-loop threads
CONNS="${CONNS:-64}"
RATES="${RATES:-2000 10000}"       # open-loop /health request rates (req/s, total)
ISO_RATE="${ISO_RATE:-1000}"       # /health rate during the isolation scenario
H2_CLIENTS=8
# Which scenario groups run: any of closed open isolation unpinned (default all).
SCENARIOS="${SCENARIOS:-closed open isolation unpinned}"
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
[[ $SMOKE == 1 ]] && { SECS=2; RATES=1000; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
BIN="$CARGO_TARGET_DIR/release"
TMP="$(mktemp -d /tmp/ringpool-http.XXXXXX)"
CLK_TCK="$(getconf CLK_TCK)"

log() { [[ -t 2 ]] && printf '\r\033[K' >&2; printf '[http] %s\n' "$*" >&2; }
[[ -n "$OUT" ]] && exec > >(tee "$OUT")

# ---- tools -------------------------------------------------------------------------
if ! command -v wrk >/dev/null || ! command -v h2load >/dev/null; then
    log "installing wrk and nghttp2-client"
    apt-get update -qq >/dev/null && apt-get install -y -qq wrk nghttp2-client >/dev/null
fi
command -v taskset >/dev/null || { log "taskset (util-linux) missing"; exit 1; }

log "building ringpool-peer (release)"
cargo build --release -j2 -q -p ringpool-peers
# `ringpool serve` is taken from $BIN/ringpool as it is (build it first with
# `cargo build --release -p ringpool-cli`); this script does not rebuild the CLI.

# ---- contenders: name|command (PORT is replaced) ------------------------------------
PEERS="${PEERS:-hyper-blocking hyper-inline hyper-ringpool}"   # which peers run
CONTENDERS=()
for p in $PEERS; do
    case $p in
        hyper-ringpool) CONTENDERS+=("$p|$BIN/ringpool-peer --impl $p --addr 127.0.0.1:PORT --workers $WORKERS") ;;
        *) CONTENDERS+=("$p|$BIN/ringpool-peer --impl $p --addr 127.0.0.1:PORT --workers $WORKERS --threads $THREADS") ;;
    esac
done
# ringpool serve: one contender per handoff in $HANDOFFS.
HANDOFFS="${HANDOFFS:-auto}"   # e.g. "auto msg-ring+per-job pipe condvar" (the question's and the answer's designs)
# NICES: also run each handoff with these `--worker-nice` values (default: only
# serve's own default), e.g. NICES="10 5 0".
NICES="${NICES:-}"
if "$BIN/ringpool" serve --help >/dev/null 2>&1; then
    for h in $HANDOFFS; do
        # `X+per-job`: handoff X with one announcement per job (the answer's design).
        case $h in
            *+per-job) base="--handoff ${h%+per-job} --announce per-job" ;;
            *) base="--handoff $h" ;;
        esac
        if [[ -z "$NICES" ]]; then
            CONTENDERS+=("ringpool-$h|$BIN/ringpool serve --addr 127.0.0.1:PORT --workers $WORKERS $base")
        fi
        for n in $NICES; do
            CONTENDERS+=("ringpool-$h-nice$n|$BIN/ringpool serve --addr 127.0.0.1:PORT --workers $WORKERS $base --worker-nice $n")
        done
    done
else
    log "skipping ringpool serve: '$BIN/ringpool serve --help' fails (not built yet)"
fi

# ---- lua for wrk: method/body from the environment, percentiles in done() ----------
cat >"$TMP/wrk.lua" <<'EOF'
local method = os.getenv("WRK_METHOD") or "GET"
local size = tonumber(os.getenv("WRK_BODY_BYTES") or "0")
local literal = os.getenv("WRK_BODY")
wrk.method = method
if literal and literal ~= "" then
  wrk.body = literal
elseif size > 0 then
  -- Text-like and compressible, so /compress has work to do.
  local line = "ringpool serves this line from a worker pool on io_uring. "
  wrk.body = string.rep(line, math.ceil(size / #line)):sub(1, size)
end
if wrk.body then wrk.headers["Content-Type"] = "application/octet-stream" end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d secs=%.3f p50=%d p99=%d p999=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.connect + e.read + e.write + e.timeout, e.status))
end
EOF

# ---- helpers -----------------------------------------------------------------------
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    [[ -n "${LOAD_PID:-}" ]] && kill "$LOAD_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT_BASE=$((18000 + RANDOM % 1000))
start_server() { # cmd pin(0/1)
    local cmd="${1//PORT/$PORT}"
    if [[ $2 == 1 ]]; then
        taskset -c 1 $cmd >"$TMP/server.out" 2>"$TMP/server.err" &
    else
        $cmd >"$TMP/server.out" 2>"$TMP/server.err" &
    fi
    SERVER_PID=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "server did not start: $cmd"; cat "$TMP/server.err" >&2; return 1
}
stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local rc=0; wait "$SERVER_PID" 2>/dev/null || rc=$?
    [[ $rc == 0 ]] || log "server exited $rc"
    SERVER_PID=""
}
cpu_ticks() { # utime+stime of the server (fields 14, 15 after the comm field)
    local stat; stat="$(<"/proc/$SERVER_PID/stat")"
    stat="${stat##*) }"
    awk '{print $12 + $13}' <<<"$stat"
}
# All results: contender|scenario|rps|p50|p99|p999|cpu_us|errors
RESULTS="$TMP/results"
: >"$RESULTS"
record() { echo "$1|$2|$3|$4|$5|$6|$7|$8" >>"$RESULTS"; }

# Progress on stderr: a bar of the runs done of the runs planned, the time
# left, and the run starting. On a terminal the bar redraws in place (one
# line); otherwise (CI logs, a pipe) each run gets its own line.
RUN_NO=0
progress() { # contender scenario
    RUN_NO=$((RUN_NO + 1))
    local total=$(( ${#CONTENDERS[@]} * RUNS_PER_CONTENDER ))
    local left=$(( (total - RUN_NO + 1) * (SECS + 1) ))
    local width=24 done_cols bar
    done_cols=$(( (RUN_NO - 1) * width / (total > 0 ? total : 1) ))
    bar="$(printf '%*s' "$done_cols" '' | tr ' ' '#')$(printf '%*s' $((width - done_cols)) '' | tr ' ' '.')"
    if [[ -t 2 ]]; then
        printf '\r\033[K[http] [%s] %d/%d ~%dm%02ds left  %s: %s' "$bar" "$RUN_NO" "$total" \
            $((left / 60)) $((left % 60)) "$1" "$2" >&2
    else
        printf '[http] [%s] %d/%d ~%ds left  %s: %s\n' "$bar" "$RUN_NO" "$total" "$left" "$1" "$2" >&2
    fi
}
# Ends the redrawn bar's line before the report (a terminal only).
progress_done() { [[ -t 2 && $RUN_NO -gt 0 ]] && printf '\r\033[K[http] done: %d runs\n' "$RUN_NO" >&2; return 0; }

run_wrk() { # contender scenario path method bytes literal pin
    local name=$1 scen=$2 path=$3 pin=$7 pre post out
    progress "$name" "$scen"
    local gen=(taskset -c 0); [[ $pin == 0 ]] && gen=()
    pre=$(cpu_ticks)
    out=$(WRK_METHOD=$4 WRK_BODY_BYTES=$5 WRK_BODY=$6 "${gen[@]}" wrk -t1 -c"$CONNS" \
        -d"${SECS}s" --timeout 10s --latency -s "$TMP/wrk.lua" "http://127.0.0.1:$PORT$path")
    post=$(cpu_ticks)
    local line; line=$(grep '^RESULT' <<<"$out") || { log "wrk failed: $out"; return 0; }
    awk -v name="$name" -v scen="$scen" -v ticks=$((post - pre)) -v hz="$CLK_TCK" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        cpu = v["requests"] > 0 ? ticks / hz * 1e6 / v["requests"] : 0
        printf "%s|%s|%.0f|%d|%d|%d|%.1f|%d\n", name, scen, v["requests"] / v["secs"],
            v["p50"], v["p99"], v["p999"], cpu, v["errors"] + v["non2xx"] }' <<<"$line" >>"$RESULTS"
}

# Percentiles of an h2load --log-file (column 3: µs to the end of the response).
h2_summary() { # name scen logfile ticks secs
    awk '{print $3}' "$3" 2>/dev/null | sort -n | awk -v name="$1" -v scen="$2" \
        -v ticks="$4" -v hz="$CLK_TCK" -v secs="$5" '
        { a[NR] = $1 }
        END {
            if (NR == 0) { printf "%s|%s|0|0|0|0|0|0\n", name, scen; exit }
            i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
            i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
            i999 = int(NR * 0.999); if (i999 < 1) i999 = 1
            printf "%s|%s|%.0f|%d|%d|%d|%.1f|0\n", name, scen, NR / secs,
                a[i50], a[i99], a[i999], ticks / hz * 1e6 / NR }'
}

run_h2() { # contender scenario rate
    local name=$1 scen=$2 rate=$3 pre post
    progress "$name" "$scen"
    local per=$(( (rate + H2_CLIENTS - 1) / H2_CLIENTS ))
    rm -f "$TMP/h2.log"
    pre=$(cpu_ticks)
    taskset -c 0 h2load --h1 -c"$H2_CLIENTS" --rps="$per" -D "$SECS" \
        --log-file="$TMP/h2.log" "http://127.0.0.1:$PORT/health" >"$TMP/h2.out" 2>&1 \
        || log "h2load failed: $(tail -3 "$TMP/h2.out")"
    post=$(cpu_ticks)
    h2_summary "$name" "$scen" "$TMP/h2.log" $((post - pre)) "$SECS" >>"$RESULTS"
}

# ---- runs --------------------------------------------------------------------------
RUNS_PER_CONTENDER=0
if [[ $SMOKE == 1 ]]; then
    RUNS_PER_CONTENDER=2
else
    want closed && RUNS_PER_CONTENDER=$((RUNS_PER_CONTENDER + 4))
    want open && RUNS_PER_CONTENDER=$((RUNS_PER_CONTENDER + $(wc -w <<<"$RATES")))
    want isolation && RUNS_PER_CONTENDER=$((RUNS_PER_CONTENDER + 2))
    want unpinned && RUNS_PER_CONTENDER=$((RUNS_PER_CONTENDER + 1))
fi
i=0
for c in "${CONTENDERS[@]}"; do
    name="${c%%|*}"; cmd="${c#*|}"
    PORT=$((PORT_BASE + i)); i=$((i + 1))
    log "$name: $cmd"
    start_server "$cmd" 1
    if [[ $SMOKE == 1 ]]; then
        run_wrk "$name" "wrk /health" /health GET 0 "" 1
        run_h2 "$name" "h2load /health @${RATES}/s" "$RATES"
        stop_server
        continue
    fi
    if want closed; then
        run_wrk "$name" "wrk /health" /health GET 0 "" 1
        run_wrk "$name" "wrk /hash 16KiB" /hash POST 16384 "" 1
        run_wrk "$name" "wrk /compress 16KiB" /compress POST 16384 "" 1
        run_wrk "$name" "wrk /password/verify" /password/verify POST 0 ringpool 1
    fi
    if want open; then
        for r in $RATES; do
            run_h2 "$name" "h2load /health @${r}/s" "$r"
        done
    fi
    if ! want isolation; then
        stop_server
        if want unpinned; then
            start_server "$cmd" 0
            run_wrk "$name" "unpinned wrk /health" /health GET 0 "" 0
            stop_server
        fi
        continue
    fi
    # Isolation: /health at a fixed rate, alone and next to a saturating verify load.
    run_h2 "$name" "isolation /health @${ISO_RATE}/s unloaded" "$ISO_RATE"
    WRK_METHOD=POST WRK_BODY=ringpool taskset -c 0 wrk -t1 -c"$CONNS" -d"$((SECS + 2))s" \
        --timeout 10s -s "$TMP/wrk.lua" "http://127.0.0.1:$PORT/password/verify" \
        >"$TMP/iso-wrk.out" 2>&1 &
    LOAD_PID=$!
    sleep 1
    run_h2 "$name" "isolation /health @${ISO_RATE}/s loaded" "$ISO_RATE"
    wait "$LOAD_PID" || true; LOAD_PID=""
    stop_server
    # One unpinned run: neither side pinned.
    if want unpinned; then
        start_server "$cmd" 0
        run_wrk "$name" "unpinned wrk /health" /health GET 0 "" 0
        stop_server
    fi
done

# ---- report ------------------------------------------------------------------------
progress_done
echo "# ringpool HTTP load test, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# $(nproc) CPUs, $(uname -r); ${SECS}s a run, wrk -c$CONNS, h2load --h1 -c$H2_CLIENTS;"
echo "# server on CPU 1, load on CPU 0 (but 'unpinned'); --workers $WORKERS --threads $THREADS"
echo "# latencies in µs; CPU = server utime+stime per request; ratio = req/s / hyper-blocking's"
awk -F'|' '
    { key = $2; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
      row[key, ++count[key]] = $0; if ($1 == "hyper-blocking") base[key] = $3 }
    END {
        for (k = 1; k <= n; k++) {
            key = order[k]
            printf "\n## %s\n%-22s %10s %8s %8s %8s %10s %8s %7s\n", key, "contender", "req/s",
                "p50", "p99", "p99.9", "CPU us/req", "vs h-b", "errors"
            for (j = 1; j <= count[key]; j++) {
                split(row[key, j], f, "|")
                ratio = base[key] > 0 ? sprintf("%.2f", f[3] / base[key]) : "-"
                printf "%-22s %10s %8s %8s %8s %10s %8s %7s\n", f[1], f[3], f[4], f[5], f[6],
                    f[7], ratio, f[8]
            }
        }
    }' "$RESULTS"

# Isolation in one line per contender: /health p99 alone vs next to the verify load.
# (Its CPU column is not per /health request: the verify load runs in the same process.)
if [[ $SMOKE == 0 ]]; then
    echo
    echo "## isolation summary: /health p99 (us) at ${ISO_RATE}/s, unloaded -> loaded by /password/verify"
    awk -F'|' '$2 ~ /^isolation/ {
            if ($2 ~ /unloaded/) u[$1] = $5; else { l[$1] = $5; r[$1] = $3 }
            if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
        END { for (k = 1; k <= n; k++) { c = order[k]
            printf "%-22s %8s -> %8s  (%s of %s req/s served)\n", c, u[c], l[c], r[c], rate } }' \
        rate="$ISO_RATE" "$RESULTS"
fi
