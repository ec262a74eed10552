#!/usr/bin/env bash
# Installs what is missing, builds (Release) and starts the server on its
# embedded RocksDB store. Extra arguments go to `caseledger serve`, e.g.
#   scripts/run.sh --data /var/lib/caseledger --listen 127.0.0.1:9090
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release caseledger
exec build/release/cli/caseledger serve "$@"
