#!/usr/bin/env bash
# Installs every Debian 12 package caseledger needs to build, test and run.
# Idempotent: when everything is present it only checks, in well under a second.
#   scripts/setup.sh          what building and running need
#   scripts/setup.sh --test   and what the whole test suite needs besides:
#                             the browser and the npm tools of the console's
#                             tests (scripts/console_check.sh)
set -euo pipefail
FOR_TESTS=0
[ "${1:-}" = "--test" ] && FOR_TESTS=1

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git ca-certificates
  # libraries (README.md, "Dependencies", says why each is here)
  librocksdb-dev libboost1.81-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libcli11-dev libssl-dev libsimdjson-dev libjemalloc-dev
  # alerting (notify/): SMTP with STARTTLS and HTTPS webhooks
  libcurl4-openssl-dev
  # replication (replicate/): the NATS C client, for JetStream
  libnats-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # fuzzing (scripts/fuzz.sh) and the ThreadSanitizer build: clang and its
  # libFuzzer and sanitizer runtimes; scripts/tidy.sh: clang-tidy
  clang libclang-rt-14-dev clang-tidy
  # scripts/full_disk_check.sh talks to the server as a client would
  curl python3
)
if [ "$FOR_TESTS" = 1 ]; then
  # The console's tests: Debian's Chromium and its driver, Selenium for
  # Debian's Python, and Node.js for the pinned npm tools (axe-core, the
  # OpenAPI linter). A machine that has Node.js from elsewhere keeps it.
  PACKAGES+=(chromium chromium-driver python3-selenium)
  # The alerting tests' local SMTP sink (tests/notify/sink.py).
  PACKAGES+=(python3-aiosmtpd)
  # The replication tests start their own three-node JetStream cluster.
  PACKAGES+=(nats-server)
  command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
  command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
fi

# valijson (JSON Schema validation) is header-only. Debian's libvalijson-dev
# depends on ~70 packages (Qt5, Poco, ...) for adapters we do not use, so we
# unpack only its headers into .deps/ instead of installing it.
VALIJSON_DIR="$(cd "$(dirname "$0")/.." && pwd)/.deps/valijson"
fetch_valijson() {
  [ -f "$VALIJSON_DIR/usr/include/valijson/validator.hpp" ] && return 0
  local tmp
  tmp="$(mktemp -d)"
  if ! (cd "$tmp" && apt-get download libvalijson-dev >/dev/null 2>&1); then
    $SUDO apt-get update -qq
    (cd "$tmp" && apt-get download libvalijson-dev >/dev/null)
  fi
  mkdir -p "$VALIJSON_DIR"
  dpkg -x "$tmp"/libvalijson-dev_*.deb "$VALIJSON_DIR"
  rm -rf "$tmp"
  echo "setup: valijson headers in $VALIJSON_DIR" >&2
}

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: packages installed" >&2
fi
fetch_valijson
