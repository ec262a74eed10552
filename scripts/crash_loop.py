#!/usr/bin/env python3
"""Crash loop over HTTP with acknowledgement accounting.

Starts the real server, lets clients report concerns (each with its own
Idempotency-Key), kills the server with SIGKILL at a random moment, starts
it again, and checks, every cycle:
  - every report answered 2xx before the kill is there (read back);
  - every report left unanswered by the kill, retried with its key, is
    answered (201: it had not been written; 200 and deduplicated: it had),
    and its case holds exactly one report (no duplicate);
  - the restart time (process start to /readyz answering 200).
At the end the whole log is verified (`caseledger verify`) and every report
ever acknowledged is read back once more.

  scripts/crash_loop.py [--cycles N] [--clients C] [--bin PATH] [--json FILE]

Exit status 0 only when nothing acknowledged was lost, nothing was
duplicated and the log verifies. Only loopback traffic; bounded by --cycles.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from first_token import serve_new_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def request(port, method, path, token=None, body=None, headers=None,
            timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = body.encode("utf-8")
        h["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


class Server:
    def __init__(self, binary, data, port, log, extra_args=(),
                 command="serve"):
        self.binary, self.data, self.port, self.log = binary, data, port, log
        self.extra_args = list(extra_args)  # e.g. ["--config", FILE]
        self.command = command  # or "follow"
        self.proc = None

    def start(self):
        """Starts the server; returns its stdout text so far and the
        seconds until /readyz answered 200."""
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.binary, self.command, "--data", self.data, "--listen",
             f"127.0.0.1:{self.port}", *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited on start; see its log")
            try:
                status, _ = request(self.port, "GET", "/readyz", timeout=2)
                if status == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() - t0 > 120:
                raise RuntimeError("the server was not ready within 120 s")
            time.sleep(0.005)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "release",
                                                   "cli", "caseledger"))
    ap.add_argument("--min-ms", type=int, default=30)
    ap.add_argument("--max-ms", type=int, default=400)
    ap.add_argument("--pause-ms", type=float, default=0,
                    help="each client waits this long between reports")
    ap.add_argument("--final-sample", type=int, default=5000,
                    help="at the end, read back at most this many earlier "
                         "reports (each was read back after its cycle)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--seed", type=int, default=20261206)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with open(os.path.join(ROOT, "scripts", "examples", "report.json")) as f:
        report = f.read()

    work = tempfile.mkdtemp(prefix="caseledger-crash-loop-")
    data = os.path.join(work, "data")
    port = 20000 + rng.randrange(20000)
    log = open(os.path.join(work, "server.log"), "w")
    server = Server(args.bin, data, port, log)
    failures = []

    # A new store: its first DSL token is printed once.
    server.proc, token = serve_new_store(args.bin, data, port, log)
    if not token:
        print("crash_loop: no first token printed", file=sys.stderr)
        return 1
    server.stop()

    acked = {}       # key -> case id, answered 2xx
    unanswered = []  # keys whose answer the kill took
    restart_s = []
    retried = duplicates = lost = 0

    def client(stop, lock, out_acked, out_unanswered):
        while not stop.is_set():
            key = str(uuid.uuid4())
            try:
                status, body = request(port, "POST", "/v1/cases", token,
                                       report, {"Idempotency-Key": key})
            except (OSError, http.client.HTTPException):
                with lock:
                    out_unanswered.append(key)
                return  # the server is gone
            if status in (200, 201):
                with lock:
                    out_acked[key] = json.loads(body)["case_id"]
            elif status != 503:
                with lock:
                    failures.append(f"report answered {status}: {body[:200]}")
            if args.pause_ms:
                time.sleep(args.pause_ms / 1000)

    def one_report_in(case_id):
        status, body = request(port, "GET", f"/v1/cases/{case_id}/history",
                               token)
        if status != 200:
            return status, 0
        events = json.loads(body).get("events", [])
        return 200, sum(1 for e in events if e.get("type") == "ConcernReported")

    started = time.monotonic()
    new_acked = {}
    for cycle in range(args.cycles):
        restart_s.append(server.start())
        # What the last kill left unanswered: retried with its key.
        for key in unanswered:
            status, body = request(port, "POST", "/v1/cases", token, report,
                                   {"Idempotency-Key": key})
            if status not in (200, 201):
                failures.append(f"retry of {key} answered {status}")
                continue
            retried += 1
            acked[key] = json.loads(body)["case_id"]
            status, n = one_report_in(acked[key])
            if n != 1:
                duplicates += 1
                failures.append(f"case {acked[key]} holds {n} reports")
        unanswered = []
        # What was acknowledged before the last kill is there.
        for key in list(new_acked):
            status, n = one_report_in(acked[key])
            if status != 200 or n != 1:
                lost += 1
                failures.append(f"acknowledged {acked[key]}: {status}, {n}")
        # Load, then a kill at a random moment.
        stop, lock = threading.Event(), threading.Lock()
        new_acked = {}
        threads = [threading.Thread(target=client,
                                    args=(stop, lock, new_acked, unanswered))
                   for _ in range(args.clients)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(args.min_ms, args.max_ms) / 1000)
        server.kill()
        stop.set()
        for t in threads:
            t.join()
        acked.update(new_acked)
        if failures:
            break
        if (cycle + 1) % 50 == 0:
            print(f"crash_loop: {cycle + 1} cycles, {len(acked)} acknowledged",
                  flush=True)

    # The end: once more, everything ever acknowledged, and the whole log.
    restart_s.append(server.start())
    for key in unanswered:
        status, body = request(port, "POST", "/v1/cases", token, report,
                               {"Idempotency-Key": key})
        if status in (200, 201):
            retried += 1
            acked[key] = json.loads(body)["case_id"]
        else:
            failures.append(f"final retry of {key} answered {status}")
    keys = list(acked)
    if len(keys) > args.final_sample:
        keys = rng.sample(keys, args.final_sample) + list(new_acked)
    for key in keys:
        case_id = acked[key]
        status, n = one_report_in(case_id)
        if status != 200 or n != 1:
            lost += 1
            failures.append(f"at the end, {case_id}: {status}, {n}")
    server.stop()
    verify = subprocess.run([args.bin, "verify", "--data", data],
                            capture_output=True, text=True)
    if verify.returncode != 0:
        failures.append("verify: " + verify.stdout[-500:] + verify.stderr[-500:])
    elapsed = time.monotonic() - started

    restart_s.sort()
    figures = {
        "cycles": args.cycles,
        "acknowledged": len(acked),
        "retried_after_kill": retried,
        "lost": lost,
        "duplicated": duplicates,
        "verify_ok": verify.returncode == 0,
        "restart_seconds_median": round(statistics.median(restart_s), 4),
        "restart_seconds_p99": round(
            restart_s[min(len(restart_s) - 1, int(len(restart_s) * 0.99))], 4),
        "restart_seconds_max": round(restart_s[-1], 4),
        "wall_seconds": round(elapsed, 1),
    }
    print("crash_loop: " + json.dumps(figures))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    log.close()
    if failures:
        for f in failures[:20]:
            print("crash_loop: FAILED: " + f, file=sys.stderr)
        print(f"crash_loop: the server's log is in {work}", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
