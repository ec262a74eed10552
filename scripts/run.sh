#!/usr/bin/env bash
# Installs what is missing, builds (Release) and starts the server on its
# embedded RocksDB store (default ./data, 127.0.0.1:8080). On a new store it
# prints a first admin and DSL token, once. Extra arguments go to
# `caseledger serve`, e.g.
#   scripts/run.sh --demo          # a new store gets 25 fictional demo cases
#   scripts/run.sh --data /var/lib/caseledger --listen 127.0.0.1:9090
#
# Personal data is encrypted under a key-encryption key (KEK) kept outside
# the store. Unless one is configured (CASELEDGER_KEK_FILE, --kek-file, a
# systemd credential or CASELEDGER_KEK), this makes one for the demo, once,
# in ./caseledger.kek (mode 0600), and says so. Without it the data cannot
# be read: keep it, and in production keep it off the data volume.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release caseledger
bin=build/release/cli/caseledger
if [ -z "${CASELEDGER_KEK_FILE:-}" ] && [ -z "${CASELEDGER_KEK:-}" ] &&
   [ -z "${CREDENTIALS_DIRECTORY:-}" ] && [[ " $* " != *" --kek-file"* ]] &&
   [[ " $* " != *" --dev-kek "* ]]; then
  export CASELEDGER_KEK_FILE="$PWD/caseledger.kek"
  if [ ! -f "$CASELEDGER_KEK_FILE" ]; then
    "$bin" keys new-kek "$CASELEDGER_KEK_FILE" >&2
  fi
  echo "run.sh: personal data is encrypted under the KEK in $CASELEDGER_KEK_FILE" >&2
fi
exec "$bin" serve "$@"
