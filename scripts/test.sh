#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: first the Release
# build (which also builds the benchmarks, so they cannot rot), then the whole
# suite again under AddressSanitizer and UndefinedBehaviorSanitizer.
# Set CASELEDGER_SKIP_SANITIZE=1 to skip the second pass locally.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

run_suite() {
  local preset="$1"
  echo "== build ($preset)"
  scripts/build.sh "$preset"
  echo "== test ($preset)"
  ctest --test-dir "build/$preset" --output-on-failure --timeout 600 -j1
}

run_suite release
if [ "${CASELEDGER_SKIP_SANITIZE:-0}" != "1" ]; then
  run_suite sanitize
fi
echo "== all tests passed"
