#!/usr/bin/env bash
# HTTP load benchmark of the caseledger server, with wrk, beside a ceiling:
# a minimal Boost.Beast server answering a fixed body (minimal_server.cc).
#
# 1. Seeds a temporary store (caseledger seed, $SEED_CASES cases) and issues
#    two tokens: user:bench-dsl (dsl) and svc:bench-feed (integration).
# 2. Serves it on 127.0.0.1:$PORT pinned to core $SERVER_CPU and runs wrk
#    pinned to core $CLIENT_CPU (-t1 -c$CONNECTIONS -d${DURATION}s --latency):
#      post_report.lua  POST /v1/cases, a new concern each (durable append)
#      get_case.lua     GET /v1/cases/{id} over the seeded ids (each read is
#                       also a durable access-log append)
#      feed_page.lua    GET /v1/learning/feed?after=N&limit=100
#      list_page.lua    GET /v1/cases?limit=100 (each case listed is also a
#                       durable access-log append)
#    then stops it (SIGTERM).
# 3. Serves the minimal server on the same core and runs get_case.lua at it.
# 4. Prints the machine, then a Markdown table (wrk_table.py): req/s, p50,
#    p99, req/s as a ratio to the ceiling, the server's CPU time per request
#    (user + system, from /proc; steadier than req/s, which follows the
#    disk's fsync latency), and the count of non-2xx answers.
#    Exits 1 if any request was answered outside 2xx or hit a socket error.
#
#   bench/http/run_http_bench.sh
# Environment (defaults in brackets):
#   CASELEDGER_BIN, MINIMAL_BIN  use these binaries; unless both are given,
#                    builds them: scripts/build.sh release caseledger
#                    http_minimal_server
#   DURATION [15]    seconds per wrk run     CONNECTIONS [32]  wrk -c
#   REPEAT [1]       runs of each benchmark; the table shows medians
#   WARMUP [2]       seconds of unrecorded GETs before measuring each server
#   SEED_CASES [2000]  PORT [18080]  MINIMAL_PORT [18090]
#   SERVER_CPU [0]  CLIENT_CPU [1]  SERVER_THREADS [server default: per core]
#   BENCH_TMP [/tmp] where the store is made (its fsync cost is measured too)
#   OUT_DIR          if set, the raw wrk outputs and server logs are kept here
set -euo pipefail
# Personal data is sealed under a key-encryption key: one for this run,
# unless one is given.
export CASELEDGER_KEK="${CASELEDGER_KEK:-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')}"
cd "$(dirname "$0")/../.."
started_at=$(date +%s.%N)

DURATION="${DURATION:-15}"
CONNECTIONS="${CONNECTIONS:-32}"
REPEAT="${REPEAT:-1}"
WARMUP="${WARMUP:-2}"
SEED_CASES="${SEED_CASES:-2000}"
PORT="${PORT:-18080}"
MINIMAL_PORT="${MINIMAL_PORT:-18090}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
SERVER_THREADS="${SERVER_THREADS:-}"
CASE_PREFIX="case-" # what `caseledger seed` names cases (checked below)

log() { echo "http-bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
need() { # need COMMAND PACKAGE: apt-get install PACKAGE if COMMAND is missing
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq "$2" >/dev/null ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "$2" >/dev/null; }
}
need wrk wrk
need curl curl
need python3 python3
need taskset util-linux

# --- Binaries ---------------------------------------------------------------
if [ -n "${CASELEDGER_BIN:-}" ] && [ -n "${MINIMAL_BIN:-}" ]; then
  log "using CASELEDGER_BIN=$CASELEDGER_BIN MINIMAL_BIN=$MINIMAL_BIN"
else
  scripts/setup.sh
  scripts/build.sh release caseledger http_minimal_server
  CASELEDGER_BIN="build/release/cli/caseledger"
  MINIMAL_BIN="build/release/bench/http_minimal_server"
fi
[ -x "$CASELEDGER_BIN" ] || die "not executable: $CASELEDGER_BIN"
[ -x "$MINIMAL_BIN" ] || die "not executable: $MINIMAL_BIN"

# Server on one core, client on another; on a single core, no pinning.
if [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c "$SERVER_CPU")
  pin_client=(taskset -c "$CLIENT_CPU")
else
  log "warning: one core only: server and wrk share it, unpinned"
  pin_server=()
  pin_client=()
fi
threads_flag=()
[ -n "$SERVER_THREADS" ] && threads_flag=(--threads "$SERVER_THREADS")

# --- Temporary store and cleanup -------------------------------------------
tmp="$(mktemp -d "${BENCH_TMP:-/tmp}/cl-http-bench-XXXXXX")"
store="$tmp/store"
results="$tmp/results"
mkdir -p "$results"
server_pid=""

stop() { # stop PID: SIGTERM, then SIGKILL after 30 s
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "warning: pid $pid ignored SIGTERM for 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$server_pid" ] && stop "$server_pid"
  if [ -n "${OUT_DIR:-}" ]; then
    mkdir -p "$OUT_DIR"
    cp -r "$results" "$tmp"/*.log "$OUT_DIR"/ 2>/dev/null || true
    log "raw outputs kept in $OUT_DIR"
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Nothing may be answering on the ports already, or we would measure it.
for p in "$PORT" "$MINIMAL_PORT"; do
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then
    die "something already answers on 127.0.0.1:$p (set PORT / MINIMAL_PORT)"
  fi
done

log "seeding $SEED_CASES cases into $store"
"$CASELEDGER_BIN" seed --data "$store" --cases "$SEED_CASES" \
  >>"$tmp/cli.log" 2>&1 || { tail -20 "$tmp/cli.log" >&2; die "seed failed"; }
token() { # token ACTOR ROLE: prints a new bearer token (server stopped)
  local t
  t="$("$CASELEDGER_BIN" token create --data "$store" --actor "$1" \
        --role "$2" 2>>"$tmp/cli.log" | tail -n 1)"
  [ -n "$t" ] || die "token create --actor $1 printed no token"
  echo "$t"
}
dsl_token="$(token user:bench-dsl dsl)"
feed_token="$(token svc:bench-feed integration)"

# start NAME PORT COMMAND...: starts a server pinned to the server core and
# waits for it to answer GET /readyz with 200.
start() {
  local name="$1" port="$2" code
  shift 2
  "${pin_server[@]}" "$@" >"$tmp/$name.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 300); do
    kill -0 "$server_pid" 2>/dev/null ||
      { tail -20 "$tmp/$name.log" >&2; die "$name exited while starting"; }
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
              "http://127.0.0.1:$port/readyz" || true)"
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  tail -20 "$tmp/$name.log" >&2
  die "$name did not answer /readyz with 200 within 30 s"
}

# bench NAME SCRIPT PORT TOKEN REPEAT: one wrk run, output to results/.
bench() {
  local name="$1" script="$2" port="$3" tok="$4" rep="$5"
  local out="$results/$name.$rep.txt"
  local cpu_before
  cpu_before="$(server_cpu_ticks)"
  TOKEN="$tok" CASES="" CASE_PREFIX="$CASE_PREFIX" CASE_COUNT="$SEED_CASES" \
    FEED_LAST_SEQ="$feed_last_seq" \
    "${pin_client[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    --timeout 10s -s "bench/http/$script.lua" "http://127.0.0.1:$port" \
    >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed: $name"; }
  # The server's CPU time over the run, per request answered: steadier from
  # run to run than req/s, which follows the disk's fsync latency.
  echo "bench server cpu ticks: $(( $(server_cpu_ticks) - cpu_before ))" \
       "of $(getconf CLK_TCK) per second" >>"$out"
  log "$name #$rep: $(grep -h '^Requests/sec' "$out" | tr -s ' ') |" \
      "$(grep -h '^bench non-2xx' "$out")"
}
server_cpu_ticks() { # user + system CPU time of the server so far, in ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$server_pid/stat"
}
warm_up() { # warm_up PORT: unrecorded GETs
  [ "$WARMUP" = 0 ] && return 0
  TOKEN="$dsl_token" CASES="" CASE_PREFIX="$CASE_PREFIX" \
    CASE_COUNT="$SEED_CASES" "${pin_client[@]}" wrk -t1 -c"$CONNECTIONS" \
    -d"${WARMUP}s" -s bench/http/get_case.lua "http://127.0.0.1:$1" \
    >/dev/null 2>&1 || die "warm-up wrk failed on port $1"
}

# --- caseledger -------------------------------------------------------------
start caseledger "$PORT" "$CASELEDGER_BIN" serve --data "$store" \
  --listen "127.0.0.1:$PORT" "${threads_flag[@]}"
log "caseledger is ready on 127.0.0.1:$PORT (pid $server_pid)"

# The seeded ids are as expected and readable with the dsl token.
last_id="$(printf '%s%06d' "$CASE_PREFIX" "$SEED_CASES")"
for id in "${CASE_PREFIX}000001" "$last_id"; do
  code="$(curl -s -o /dev/null -w '%{http_code}' \
            -H "Authorization: Bearer $dsl_token" \
            "http://127.0.0.1:$PORT/v1/cases/$id")"
  [ "$code" = 200 ] || die "GET /v1/cases/$id answered $code, not 200"
done

# How far the learning feed goes, so feed_page.lua asks for full pages only.
feed_last_seq="$(TOKEN="$feed_token" python3 - "$PORT" <<'EOF'
import json, os, sys, urllib.request
after = 0
while True:
    req = urllib.request.Request(
        f"http://127.0.0.1:{sys.argv[1]}/v1/learning/feed?after={after}&limit=1000",
        headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
    page = json.load(urllib.request.urlopen(req, timeout=30))
    if not page["records"]:
        break
    after = page["last_seq"]
print(after)
EOF
)"
[ "$feed_last_seq" -ge 100 ] || die "the learning feed has $feed_last_seq records"
log "learning feed: $feed_last_seq records"

warm_up "$PORT"
for rep in $(seq "$REPEAT"); do
  bench post_report post_report "$PORT" "$dsl_token" "$rep"
  bench get_case get_case "$PORT" "$dsl_token" "$rep"
  bench feed_page feed_page "$PORT" "$feed_token" "$rep"
  bench list_page list_page "$PORT" "$dsl_token" "$rep"
done
stop "$server_pid"
server_pid=""

# --- The ceiling ------------------------------------------------------------
start minimal "$MINIMAL_PORT" "$MINIMAL_BIN" --port "$MINIMAL_PORT" \
  "${threads_flag[@]}"
log "minimal server is ready on 127.0.0.1:$MINIMAL_PORT (pid $server_pid)"
warm_up "$MINIMAL_PORT"
for rep in $(seq "$REPEAT"); do
  bench minimal_get get_case "$MINIMAL_PORT" "$dsl_token" "$rep"
done
stop "$server_pid"
server_pid=""

# --- Report -----------------------------------------------------------------
cpu="$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
fs="$(df -T "$tmp" 2>/dev/null | awk 'NR==2 {print $2}')"
echo
echo "## HTTP benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- Machine: $(nproc) cores, ${cpu:-$(uname -m)}, Linux $(uname -r)"
echo "- Store: $SEED_CASES seeded cases in ${BENCH_TMP:-/tmp} (${fs:-?});" \
     "learning feed of $feed_last_seq records"
echo "- Servers pinned to core ${pin_server[2]:-any}, wrk to core" \
     "${pin_client[2]:-any}; server threads: ${SERVER_THREADS:-one per core}"
echo "- wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}'): -t1" \
     "-c$CONNECTIONS -d${DURATION}s --latency, $REPEAT repeat(s)"
echo
status=0
python3 bench/http/wrk_table.py "$results" || status=$?
echo
python3 -c 'import sys, time; print(f"Wall time: {time.time() - float(sys.argv[1]):.1f} s")' \
  "$started_at"
if [ "$status" -ne 0 ]; then
  log "FAILED: some requests were answered outside 2xx or failed (see above)"
fi
exit "$status"
