#!/usr/bin/env bash
# Issue 4's benchmarks at scale, over a store of about a million events:
#   1. seeds the store with `caseledger seed` (CASES cases, default 80,000:
#      about 1,000,000 events), once; later runs reuse it (SCALE_DIR);
#   2. rebuilds the read models beside the JSON parse ceiling measured in
#      the same run (projection_bench --store), and prints the ratio;
#   3. measures the server's memory: `caseledger serve` catching its read
#      models up from nothing over the big store and then answering reads,
#      beside the same server over a one-case store (the baseline).
# Prints Markdown for bench/RESULTS.md.
#   bench/run_scale_bench.sh   (CASES=80000 SCALE_DIR=/tmp/caseledger-scale
#                               MEMORY_ONLY=1 for step 3 alone)
set -euo pipefail
# Personal data is sealed under a key-encryption key: one for this run,
# unless one is given.
export CASELEDGER_KEK="${CASELEDGER_KEK:-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')}"
cd "$(dirname "$0")/.."
CASES="${CASES:-80000}"
DIR="${SCALE_DIR:-/tmp/caseledger-scale}"
scripts/setup.sh >/dev/null
for tool in curl python3; do
  command -v "$tool" >/dev/null || apt-get install -y -qq "$tool" >/dev/null
done
scripts/build.sh release caseledger projection_bench >/dev/null
bin="$PWD/build/release/cli/caseledger"
bench="$PWD/build/release/bench/projection_bench"

if [ ! -f "$DIR/big.ready" ]; then
  rm -rf "$DIR"
  mkdir -p "$DIR"
  start=$(date +%s.%N)
  "$bin" seed --data "$DIR/big" --cases "$CASES" | tee "$DIR/seed.txt" >&2
  end=$(date +%s.%N)
  python3 -c "print(f'seed: {($end - $start):.1f} s')" | tee -a "$DIR/seed.txt" >&2
  "$bin" seed --data "$DIR/small" --cases 1 >/dev/null
  touch "$DIR/big.ready"
fi
events=$(sed -n 's/^seeded [0-9]* cases: \([0-9]*\) events.*/\1/p' "$DIR/seed.txt")

echo "## Scale: $CASES seeded cases, $events events ($(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo

# 2. Rebuild beside the parse ceiling (MEMORY_ONLY=1 skips it).
if [ "${MEMORY_ONLY:-0}" != "1" ]; then
out="$(mktemp /tmp/scale-bench-XXXX.json)"
"$bench" --store="$DIR/big" --benchmark_filter='Ceiling|Rebuild' \
  --benchmark_out="$out" --benchmark_out_format=json >&2
python3 - "$out" <<'EOF'
import json, sys
runs = {b["name"].split("/")[0]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
ceiling = runs["BM_ParseOnlyCeiling"]["items_per_second"]
rebuild = runs["BM_RebuildReadModels"]["items_per_second"]
print("| benchmark | events/s | ratio to the parse ceiling |")
print("|---|---|---|")
print(f"| parse ceiling: read + nlohmann parse of every payload | {ceiling:,.0f} | 1.00x |")
print(f"| rebuild all read models | {rebuild:,.0f} | {rebuild / ceiling:.2f}x |")
print()
EOF
rm -f "$out"
fi

# 3. Memory. Runs the server on STORE until its read models have caught up
# from nothing, then reads cases, lists and governance views; prints the
# peak and final resident sizes in MiB.
port=18765
measure() {
  local data="$1"
  rm -rf "$data/projections"
  local token
  token=$("$bin" token create --data "$data" --actor user:scale-bench --role dsl 2>/dev/null)
  "$bin" serve --data "$data" --listen "127.0.0.1:$port" >"$DIR/serve.log" 2>&1 &
  local pid=$!
  local t0; t0=$(date +%s.%N)
  for _ in $(seq 1 600); do
    if curl -fs "http://127.0.0.1:$port/metrics" 2>/dev/null |
        grep -q '^caseledger_projection_lag_events 0$'; then
      break
    fi
    sleep 0.5
  done
  local t1; t1=$(date +%s.%N)
  local auth="Authorization: Bearer $token"
  for i in $(seq 1 200); do
    id=$(printf 'case-%06d' "$(( (i * 397) % 80000 + 1 ))")
    curl -fs -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/cases/$id" || true
  done
  curl -fs -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/cases?limit=500"
  curl -fs -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/governance/overdue-reviews"
  curl -fs -o /dev/null -H "$auth" "http://127.0.0.1:$port/v1/governance/overview"
  local hwm rss
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid" || true
  python3 -c "print(f'{$hwm/1024:.0f} {$rss/1024:.0f} {($t1 - $t0):.1f}')"
}
read -r small_hwm small_rss small_t < <(measure "$DIR/small")
read -r big_hwm big_rss big_t < <(measure "$DIR/big")
echo "| server | peak RSS | RSS after reads | catch-up |"
echo "|---|---|---|---|"
echo "| one-case store (baseline) | ${small_hwm} MiB | ${small_rss} MiB | ${small_t} s |"
echo "| $events-event store | ${big_hwm} MiB | ${big_rss} MiB | ${big_t} s |"
python3 -c "print(f'\nPeak RSS ratio to the baseline: {$big_hwm/$small_hwm:.1f}x; target: under 300 MiB.')"
