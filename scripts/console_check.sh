#!/usr/bin/env bash
# The console and the API document it stands on, checked as their users
# meet them: the OpenAPI document through an independent OpenAPI 3.1 linter
# (Redocly CLI), then the console in Debian's Chromium (tests/browser/
# console_test.py: every role's journey, axe-core on every page, 320px
# wide, screenshots under build/browser-shots). The npm tools are pinned by
# tests/browser/package-lock.json and installed there on first use.
#   scripts/console_check.sh [path/to/caseledger]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/release/cli/caseledger}"
if [ ! -f tests/browser/node_modules/.package-lock.json ] ||
   [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  echo "console_check: installing the pinned test tools (npm ci)" >&2
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "== OpenAPI lint (Redocly CLI, schemas/redocly.yaml)"
tests/browser/node_modules/.bin/redocly lint schemas/openapi.yaml \
  --config schemas/redocly.yaml --format=summary
echo "== the console in Chromium"
# Debian's python3-selenium is for Debian's own Python.
/usr/bin/python3 tests/browser/console_test.py --bin "$BIN" \
  --axe tests/browser/node_modules/axe-core/axe.min.js \
  --shots build/browser-shots
