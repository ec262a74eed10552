#!/usr/bin/env python3
"""Soak: the real server under mixed load at about half of what this
harness can drive, for as long as asked, sampling every --every seconds:
resident memory, open files, threads, and the window's request rate,
errors and p50/p99 latency. At the end, says whether memory, open files
and p99 stayed flat (the last quarter's median against the second
quarter's, once caches have filled, within --tolerance) and writes the
samples as JSON.

  scripts/soak.py [--minutes M] [--every S] [--clients C] [--json FILE]

The mix, per client: report a concern (durable write), assign its lead
(a command with If-Match), read the case, read its history, list cases,
page the learning feed, and every 100th time the governance overview
(timed apart, its slowest per window judged flat like the p99). Only loopback
traffic; it stops by itself after --minutes.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from first_token import serve_new_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Client:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = None

    def call(self, method, path, body=None, headers=None):
        h = {"Authorization": "Bearer " + self.token}
        h.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                text = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, text
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise


def proc_sample(pid):
    """Resident MiB, open files other than RocksDB's table files, table
    files open (RocksDB keeps every table file of a growing store open, so
    they grow with it), threads."""
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) // 1024
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    fds = tables = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith(".sst"):
            tables += 1
        else:
            fds += 1
    return rss, fds, tables, threads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--every", type=float, default=30)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--calibrate", type=float, default=20,
                    help="seconds at full speed to find this harness's rate")
    ap.add_argument("--fraction", type=float, default=0.5)
    ap.add_argument("--tolerance", type=float, default=0.25)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "release",
                                                   "cli", "caseledger"))
    ap.add_argument("--json")
    args = ap.parse_args()
    with open(os.path.join(ROOT, "scripts", "examples", "report.json")) as f:
        report = json.load(f)

    work = tempfile.mkdtemp(prefix="caseledger-soak-")
    data = os.path.join(work, "data")
    port = 20000 + os.getpid() % 20000
    log = open(os.path.join(work, "server.log"), "w")
    proc, token = serve_new_store(args.bin, data, port, log)
    if not token:
        print("soak: no first token printed", file=sys.stderr)
        return 1
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    for _ in range(600):
        try:
            if Client(port, token).call("GET", "/readyz")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)

    lock = threading.Lock()
    window = {"lat": [], "errors": 0, "overview": []}
    pace = {"interval": 0.0}  # seconds between one client's operations
    stop = threading.Event()

    def worker():
        c = Client(port, token)
        feed_after = 0
        cycle = 0
        while not stop.is_set():
            t0 = time.monotonic()
            steps = []  # (status, seconds) of each call
            timed = c.call

            class Timed:
                def call(self, *a):
                    t = time.monotonic()
                    try:
                        r = timed(*a)
                    except (OSError, http.client.HTTPException):
                        steps.append((0, time.monotonic() - t))
                        raise
                    steps.append((r[0], time.monotonic() - t))
                    return r
            c.call = Timed().call
            try:
                s, body = c.call("POST", "/v1/cases", report)
                if s == 201:
                    case = json.loads(body)["case_id"]
                    c.call("POST", f"/v1/cases/{case}/commands/assign-lead",
                           {"lead_actor_id": "dsl-1", "role": "dsl",
                            "reason": "initial_assignment"},
                           {"If-Match": '"1"'})
                    c.call("GET", f"/v1/cases/{case}")
                    c.call("GET", f"/v1/cases/{case}/history")
                c.call("GET", "/v1/cases?limit=20")
                cycle += 1
                if cycle % 100 == 0:  # a dashboard, looked at now and then
                    t = time.monotonic()
                    c.call("GET", "/v1/governance/overview")
                    steps.pop()  # timed on its own: slower than the rest
                    with lock:
                        window["overview"].append(time.monotonic() - t)
                s, body = c.call(
                    "GET", f"/v1/learning/feed?after={feed_after}&limit=50")
                if s == 200:
                    feed_after = json.loads(body).get("last_seq", feed_after)
            except (OSError, http.client.HTTPException):
                pass
            c.call = timed
            with lock:
                window["lat"].extend(t for _, t in steps)
                window["errors"] += sum(1 for st, _ in steps
                                        if st == 0 or st >= 500)
            rest = pace["interval"] - (time.monotonic() - t0)
            if rest > 0:
                stop.wait(rest)

    threads = [threading.Thread(target=worker) for _ in range(args.clients)]
    for t in threads:
        t.start()
    # Calibrate: full speed for a while, then pace to the fraction.
    time.sleep(args.calibrate)
    with lock:
        done, window["lat"] = len(window["lat"]), []
        window["errors"] = 0
    full_rate = done / args.calibrate
    ops_per_cycle = 6
    pace["interval"] = args.clients * ops_per_cycle / (full_rate * args.fraction)
    print(f"soak: harness's full rate {full_rate:.0f} requests/s; pacing to "
          f"{args.fraction:.0%}", flush=True)

    samples = []
    end = time.monotonic() + args.minutes * 60
    while time.monotonic() < end and proc.poll() is None:
        time.sleep(args.every)
        with lock:
            lat, errors = window["lat"], window["errors"]
            overview = window["overview"]
            window["lat"], window["errors"], window["overview"] = [], 0, []
        rss, fds, tables, nthreads = proc_sample(proc.pid)
        lat.sort()
        sample = {
            "t": round(args.minutes * 60 - (end - time.monotonic())),
            "rss_mib": rss, "open_files": fds, "table_files_open": tables,
            "threads": nthreads,
            "requests_per_s": round(len(lat) / args.every, 1),
            "errors": errors,
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
                            2) if lat else None,
            "overview_max_ms": round(max(overview) * 1000, 1) if overview
                               else None,
        }
        samples.append(sample)
        print("soak: " + json.dumps(sample), flush=True)
    stop.set()
    for t in threads:
        t.join()
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    log.close()

    # Flat: the last quarter's median against the second quarter's, once
    # the bounded caches (block caches, memtables, kept case states and
    # documents) have filled; the first quarter is reported beside them.
    q = max(1, len(samples) // 4)
    warm, first, last = samples[:q], samples[q:2 * q] or samples[:q], samples[-q:]
    verdict = {}
    ok = alive and all(s["errors"] == 0 for s in samples)
    for key in ("rss_mib", "open_files", "p99_ms", "overview_max_ms"):
        before = [s[key] for s in first if s[key] is not None]
        after = [s[key] for s in last if s[key] is not None]
        if not before or not after:
            continue
        a, b = statistics.median(before), statistics.median(after)
        flat = b <= a * (1 + args.tolerance) + (1 if key == "open_files" else 0)
        warming = [s[key] for s in warm if s[key] is not None]
        verdict[key] = {"first_quarter": statistics.median(warming) if warming
                        else None,
                        "second_quarter": a, "last_quarter": b, "flat": flat}
        ok = ok and flat
    result = {"minutes": args.minutes, "full_rate_per_s": round(full_rate),
              "fraction": args.fraction, "server_survived": alive,
              "errors": sum(s["errors"] for s in samples),
              "verdict": verdict, "samples": samples}
    print("soak: " + json.dumps({k: v for k, v in result.items()
                                 if k != "samples"}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
        return 0
    print(f"soak: NOT flat or errors; the server's log is in {work}",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
