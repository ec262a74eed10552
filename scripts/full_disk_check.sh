#!/usr/bin/env bash
# The server on a real file system that fills up: a small tmpfs holds the
# store. Checks, as a client and an operator would see it:
#   - filling the disk under writes never ends the process;
#   - writes are refused with 507 problem+json, /readyz turns 503 and says
#     why, /metrics shows caseledger_store_writable 0;
#   - once space is freed the server takes writes again without a restart;
#   - started on a disk already full, it does the same;
#   - every acknowledged report is there after a restart, and verify passes.
# Needs root (to mount the tmpfs); without it, says so and exits 0.
#   scripts/full_disk_check.sh [BUILD_DIR]     (default build/release)
set -euo pipefail
# Personal data is sealed under a key-encryption key: one for this run,
# unless one is given.
export CASELEDGER_KEK="${CASELEDGER_KEK:-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')}"
cd "$(dirname "$0")/.."
build="${1:-build/release}"
bin="$build/cli/caseledger"
[ -x "$bin" ] || { echo "full_disk_check: no $bin (build first)" >&2; exit 1; }

work="$(mktemp -d)"
mnt="$work/disk"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=48m tmpfs "$mnt" 2>/dev/null; then
  echo "full_disk_check: skipped (cannot mount a tmpfs here: needs root)"
  rm -rf "$work"
  exit 0
fi
pid=""
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  umount "$mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

data="$mnt/data"
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
fail() { echo "full_disk_check: FAILED: $*" >&2; echo "--- server log" >&2; tail -30 "$work/server.log" >&2; exit 1; }

start() {
  "$bin" serve --data "$data" --listen "127.0.0.1:$port" >>"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$base/healthz" && return 0
    kill -0 "$pid" 2>/dev/null || fail "the server did not start"
    sleep 0.1
  done
  fail "the server did not answer"
}
report() {  # prints the HTTP status; appends the case id of a 201 to acked
  local out code
  out="$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $reporter" \
    -H 'Content-Type: application/json' -d @scripts/examples/report.json \
    "$base/v1/cases")"
  code="$(tail -1 <<<"$out")"
  if [ "$code" = 201 ]; then
    head -1 <<<"$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["case_id"])' >>"$work/acked"
  fi
  echo "$code"
}
: >"$work/acked"
# Once space is freed: ready within 10 s, and a report is accepted.
ready_and_writing() {
  local back=""
  for _ in $(seq 1 50); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ]; then back=1; break; fi
    sleep 0.2
  done
  [ -n "$back" ] || fail "/readyz did not come back once space was freed ($1)"
  [ "$(report)" = 201 ] || fail "a report once space was freed was refused ($1)"
}

# A new store, then tokens for a reporter and a DSL (with the server
# stopped, as the README says).
start
kill -TERM "$pid"; wait "$pid" || true; pid=""
"$bin" token create --data "$data" --actor user:reporter-1 --role reporter >"$work/reporter"
"$bin" token create --data "$data" --actor user:dsl-1 --role dsl >"$work/dsl"
reporter="$(tail -1 "$work/reporter")"
dsl="$(tail -1 "$work/dsl")"
start
[ "$(report)" = 201 ] || fail "the first report was not accepted"
# Fill the disk (what is left of it), then write until the store refuses.
dd if=/dev/zero of="$mnt/filler" bs=1M 2>/dev/null || true
refused=""
for i in $(seq 1 3000); do
  code="$(report)"
  if [ "$code" = 507 ]; then refused=1; break; fi
  [ "$code" = 201 ] || fail "a report on a full disk answered $code"
  # The filler takes every block RocksDB frees meanwhile.
  [ $((i % 50)) = 0 ] && dd if=/dev/zero of="$mnt/filler2-$i" bs=64k 2>/dev/null || true
done
[ -n "$refused" ] || fail "writes were never refused on a full disk"
kill -0 "$pid" 2>/dev/null || fail "the server died on a full disk"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "the server died a second after the disk filled"
body="$(curl -s "$base/v1/cases" -X POST -H "Authorization: Bearer $reporter" \
  -H 'Content-Type: application/json' -d @scripts/examples/report.json)"
grep -q 'Insufficient Storage' <<<"$body" || fail "no 507 problem: $body"
ready="$(curl -s -w ' %{http_code}' "$base/readyz")"
grep -q ' 503$' <<<"$ready" || fail "/readyz did not turn 503: $ready"
grep -q 'disk is full' <<<"$ready" || fail "/readyz does not say why: $ready"
curl -s "$base/metrics" | grep -q '^caseledger_store_writable 0$' || fail "/metrics does not show it"
gov="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $dsl" "$base/v1/governance/overview")"
[ "$gov" = 200 ] || fail "a read that needs no write answered $gov"
echo "full_disk_check: disk full: writes 507, /readyz 503, reads served, process up ($(wc -l <"$work/acked") reports acknowledged)"

# Free space: the store resumes by itself.
rm -f "$mnt"/filler*
ready_and_writing "after the disk filled"
curl -s "$base/metrics" | grep -q '^caseledger_store_writable 1$' || fail "/metrics still shows the store unwritable"
echo "full_disk_check: space freed: ready again and writing, without a restart"

# Restart: every acknowledged report is there, and the log verifies.
kill -TERM "$pid"; wait "$pid" || true; pid=""
"$bin" verify --data "$data" >"$work/verify" 2>&1 || { cat "$work/verify" >&2; fail "verify"; }

# Start on a disk that is already full: up, reads served, writes 507, not
# ready; then space, and it takes writes without a restart.
dd if=/dev/zero of="$mnt/filler" bs=1M 2>/dev/null || true
start
code="$(report)"
[ "$code" = 507 ] || fail "a report on a server started on a full disk answered $code"
ready="$(curl -s -w ' %{http_code}' "$base/readyz")"
grep -q ' 503$' <<<"$ready" || fail "/readyz of a server started on a full disk: $ready"
gov="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $dsl" "$base/v1/governance/overview")"
[ "$gov" = 200 ] || fail "a read on a server started on a full disk answered $gov"
echo "full_disk_check: started on a full disk: up, reads served, writes 507, /readyz 503"
rm -f "$mnt"/filler*
ready_and_writing "started on a full disk"
echo "full_disk_check: space freed: ready and writing, without a restart"
kill -TERM "$pid"; wait "$pid" || true; pid=""
start
missing=0
while read -r id; do
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $dsl" "$base/v1/cases/$id")"
  [ "$code" = 200 ] || { echo "missing: $id ($code)" >&2; missing=$((missing + 1)); }
done <"$work/acked"
[ "$missing" = 0 ] || fail "$missing acknowledged reports are missing"
kill -TERM "$pid"; wait "$pid" || true; pid=""
"$bin" verify --data "$data" >"$work/verify" 2>&1 || { cat "$work/verify" >&2; fail "verify at the end"; }
echo "full_disk_check: restarted: all $(wc -l <"$work/acked") acknowledged reports present, verify passes"
echo "full_disk_check: passed"
