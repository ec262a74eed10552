#!/usr/bin/env bash
# Runs clang-tidy over every C++ file of the product and the tests (the
# checks are in .clang-tidy, the tests' in tests/.clang-tidy), with the
# compile commands of the `tsan` preset, a clang build. Fails on any
# finding, printing them; the whole output is in build/tidy.log.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f build/tsan/compile_commands.json ] || cmake --preset tsan >/dev/null
jobs="${CASELEDGER_JOBS:-$(nproc)}"
log=build/tidy.log
status=0
run-clang-tidy -quiet -p build/tsan -j "$jobs" \
  "^$PWD/(engine|projections|notify|replicate|api|cli|tests)/" >"$log.raw" 2>&1 || status=$?
sed 's/\x1b\[[0-9;]*m//g' "$log.raw" >"$log" && rm -f "$log.raw"
if [ "$status" -eq 0 ]; then
  echo "tidy: no findings ($(grep -c '^clang-tidy' "$log") files)"
else
  echo "tidy: findings (full output: $log)" >&2
  grep -E "(warning|error): " "$log" | sort -u >&2
  exit 1
fi
