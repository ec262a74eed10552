#!/usr/bin/env bash
# Builds the Release benchmarks, runs the engine benchmark and prints each
# engine figure as a ratio to raw RocksDB measured in the same run, in the
# Markdown shape used by bench/RESULTS.md.
#   bench/run_engine_bench.sh [--recover_events=N] [--scan_events=N] [benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
command -v python3 >/dev/null || { apt-get install -y -qq python3 >/dev/null; }
scripts/build.sh release engine_bench
out="$(mktemp /tmp/engine-bench-XXXX.json)"
# Repeated, interleaved at random, and reduced to medians: the disk's sync
# latency drifts over minutes, and interleaving spreads the drift over the
# engine and raw runs alike.
build/release/bench/engine_bench --benchmark_out="$out" --benchmark_out_format=json \
  --benchmark_repetitions="${BENCH_REPETITIONS:-5}" \
  --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true "$@" >&2
python3 bench/ratios.py "$out"
