#!/usr/bin/env bash
# Configures and builds one CMake preset: scripts/build.sh PRESET [TARGET...]
# Presets are in CMakePresets.json (release, relwithdebinfo, sanitize, tsan).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:?usage: scripts/build.sh PRESET [TARGET...]}"
shift
# Two cores here and in CI: one job per core.
jobs="${CASELEDGER_JOBS:-$(nproc)}"
# ccache hits across checkouts in other folders (CI builds a fresh clone).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
if [ ! -f "build/$preset/build.ninja" ]; then
  cmake --preset "$preset" >/dev/null
fi
if [ $# -gt 0 ]; then
  cmake --build "build/$preset" -j "$jobs" --target "$@"
else
  cmake --build "build/$preset" -j "$jobs"
fi
