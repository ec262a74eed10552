#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang with ASan and
# UBSan), replays each target's seed corpus, then fuzzes each for as long as
# asked. New inputs go to build/fuzz/corpus/<target> (the checked-in seeds
# in tests/fuzz/corpus are read, never written); a crash leaves its input in
# build/fuzz/artifacts/<target>/ and fails the run.
#
#   scripts/fuzz.sh [--seconds N] [--jobs J] [TARGET...]
#     --seconds N   fuzz each target N seconds of wall time after the replay
#                   (default 60; 0 replays the seeds only)
#     --jobs J      run J fuzzing processes per target (default 1)
#   Prints one line per target: its CPU seconds and executions, for
#   bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60
jobs=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(record_decode_fuzz stored_json_fuzz decide_fuzz upcast_fuzz scrub_fuzz http_fuzz)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

scripts/setup.sh
scripts/build.sh fuzz fuzz_targets

out="$PWD/build/fuzz"
mkdir -p "$out/corpus" "$out/artifacts" "$out/logs"
status=0
for t in "${targets[@]}"; do
  bin="$out/tests/fuzz/$t"
  seeds="$PWD/tests/fuzz/corpus/$t"
  corpus="$out/corpus/$t"
  art="$out/artifacts/$t/"
  mkdir -p "$corpus" "$art"
  # The seeds, each run once: a regression on a checked-in input fails here.
  if ! "$bin" -runs=0 -max_len=131072 -artifact_prefix="$art" "$seeds" \
      >"$out/logs/$t.replay" 2>&1; then
    echo "fuzz: $t: a seed fails (log: $out/logs/$t.replay)" >&2
    tail -40 "$out/logs/$t.replay" >&2
    status=1
    continue
  fi
  [ "$seconds" -gt 0 ] || { echo "fuzz: $t: $(ls "$seeds" | wc -l) seeds replayed"; continue; }
  start_cpu="$(awk '{print $14+$15+$16+$17}' /proc/$$/stat)"
  log="$out/logs/$t.log"
  rm -f "$out/logs/fuzz-"*.log
  set +e
  if [ "$jobs" -gt 1 ]; then
    # libFuzzer writes each job's log as fuzz-N.log in the working directory.
    (cd "$out/logs" && "$bin" -max_total_time="$seconds" -print_final_stats=1 \
      -timeout=25 -rss_limit_mb=4096 -max_len=131072 -artifact_prefix="$art" \
      -jobs="$jobs" \
      -workers="$jobs" "$corpus" "$seeds" >"$log" 2>&1)
  else
    "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=25 \
      -rss_limit_mb=4096 -max_len=131072 -artifact_prefix="$art" \
      "$corpus" "$seeds" >"$log" 2>&1
  fi
  rc=$?
  set -e
  end_cpu="$(awk '{print $14+$15+$16+$17}' /proc/$$/stat)"
  cpu=$(( (end_cpu - start_cpu) / $(getconf CLK_TCK) ))
  # (With --jobs, each job's own log holds its count.)
  execs="$({ cat "$log" "$out"/logs/fuzz-*.log 2>/dev/null || true; } |
    awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}')"
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $t: FAILED (exit $rc; input in $art; log: $log)" >&2
    grep -E "ERROR|SUMMARY|==[0-9]+==|deadly|Test unit written" "$log" | head -20 >&2
    status=1
  else
    echo "fuzz: $t: ${cpu} CPU s, ${execs} executions, corpus $(ls "$corpus" | wc -l) inputs, no finding"
  fi
done
exit "$status"
