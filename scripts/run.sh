#!/usr/bin/env bash
# Installs what is missing, builds (Release) and starts the server on its
# embedded RocksDB store (default ./data, 127.0.0.1:8080). On a new store it
# prints a first admin and DSL token, once. Extra arguments go to
# `caseledger serve`, e.g.
#   scripts/run.sh --demo          # a new store gets 25 fictional demo cases
#   scripts/run.sh --data /var/lib/caseledger --listen 127.0.0.1:9090
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release caseledger
exec build/release/cli/caseledger serve "$@"
