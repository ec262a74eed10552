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
build/release/bench/engine_bench --benchmark_out="$out" --benchmark_out_format=json "$@" >&2
python3 bench/ratios.py "$out"
