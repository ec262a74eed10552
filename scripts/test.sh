#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: first the Release
# build (which also builds the benchmarks, so they cannot rot) with the
# full-disk check, a short crash loop, the personal-data check (erasure,
# retention, export through the binary), the alerting check (e-mail and
# webhooks to local receivers), the replication check (a primary and a
# follower over a local JetStream cluster), the OpenAPI lint and the console
# in Chromium (scripts/console_check.sh) on it, then the whole
# suite again under AddressSanitizer and UndefinedBehaviorSanitizer, then
# clang-tidy over the product and the tests (zero findings), then the
# engine, service and projection suites under ThreadSanitizer (a
# clang build, which also enforces the GUARDED_BY annotations with
# -Wthread-safety -Werror on every library and the program), then the fuzz
# targets (seeds replayed, 30 s each). Set CASELEDGER_SKIP_SANITIZE=1,
# CASELEDGER_SKIP_TIDY=1, CASELEDGER_SKIP_TSAN=1 or CASELEDGER_SKIP_FUZZ=1 to
# skip those passes locally.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

run_suite() {
  local preset="$1"
  echo "== build ($preset)"
  scripts/build.sh "$preset"
  echo "== test ($preset)"
  ctest --test-dir "build/$preset" --output-on-failure --timeout 600 -j1
}

run_suite release
echo "== the server on a disk that fills up (release)"
scripts/full_disk_check.sh build/release
echo "== crash loop: SIGKILL under load, acknowledgements checked (release)"
python3 scripts/crash_loop.py --cycles 10 --bin build/release/cli/caseledger
echo "== erasure, retention and subject access through the real binary (release)"
python3 scripts/personal_data_check.py --bin build/release/cli/caseledger
echo "== alerting by e-mail and webhook through the real binary (release)"
python3 scripts/notify_check.py --bin build/release/cli/caseledger
echo "== replication: a quorum primary, two followers, a failover and signed heads over a JetStream cluster (release)"
python3 scripts/replication_check.py --bin build/release/cli/caseledger
scripts/console_check.sh build/release/cli/caseledger
if [ "${CASELEDGER_SKIP_SANITIZE:-0}" != "1" ]; then
  run_suite sanitize
fi
if [ "${CASELEDGER_SKIP_TIDY:-0}" != "1" ]; then
  echo "== clang-tidy (.clang-tidy: bugprone, performance, concurrency)"
  scripts/tidy.sh
fi
if [ "${CASELEDGER_SKIP_TSAN:-0}" != "1" ]; then
  echo "== build (tsan: clang, -Wthread-safety -Werror)"
  scripts/build.sh tsan caseledger engine_test keys_test service_test projections_test notify_test replicate_test
  # Debian's RocksDB is not built for ThreadSanitizer: tests/tsan.supp says
  # what that hides.
  for suite in engine_test keys_test service_test projections_test notify_test replicate_test; do
    echo "== test (tsan): $suite"
    TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1" \
      "build/tsan/tests/$suite" --gtest_brief=1
  done
fi
if [ "${CASELEDGER_SKIP_FUZZ:-0}" != "1" ]; then
  echo "== fuzz: every target replays its seeds, then fuzzes 30 s"
  scripts/fuzz.sh --seconds 30
fi
echo "== all tests passed"
