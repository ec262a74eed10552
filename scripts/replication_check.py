#!/usr/bin/env python3
"""Replication, run as its operators would: the real binary as a primary in
quorum mode and as a follower, over a three-server JetStream cluster of
Debian's nats-server that this script starts on loopback.

  python3 scripts/replication_check.py --bin build/release/cli/caseledger

1. The cluster; tokens; the primary (`serve` with a replication section,
   quorum mode) and a follower (`follow --nats ... --node ...`).
2. Concerns reported to the primary, each answered only once the cluster
   stored it; the follower applies them (its /metrics), is ready, serves the
   learning summary, a DSL's case list and a case (whose read records reach
   the primary's access log), shows a report's names and facts as the
   primary does (the data keys came with the log), and refuses a write with a problem naming the
   primary.
3. One NATS server is SIGKILLed: the primary goes on answering writes (two
   of three servers are a quorum) and the follower goes on applying them.
4. Both stop; `caseledger verify` on each store prints the same head (the
   same position and log hash).
Exits non-zero, saying what failed, at the first surprise.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from check_steps import fail, run, wait_for
from crash_loop import Server, request
import first_token  # noqa: F401 (sets CASELEDGER_KEK for the run)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATS_SERVER = "/usr/sbin/nats-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Three nats-server processes with JetStream, clustered on loopback."""

    def __init__(self, work):
        self.work = work
        self.nodes = [{"client": free_port(), "cluster": free_port(),
                       "http": free_port()} for _ in range(3)]
        self.procs = [None] * 3

    def urls(self):
        return [f"nats://127.0.0.1:{n['client']}" for n in self.nodes]

    def start(self):
        routes = "\n".join(f"    nats://127.0.0.1:{n['cluster']}"
                           for n in self.nodes)
        for i, n in enumerate(self.nodes):
            conf = os.path.join(self.work, f"nats{i}.conf")
            with open(conf, "w") as f:
                f.write(f"server_name: n{i}\n"
                        f"listen: 127.0.0.1:{n['client']}\n"
                        f"http: 127.0.0.1:{n['http']}\n"
                        f"log_file: \"{self.work}/nats{i}.log\"\n"
                        f"jetstream {{ store_dir: \"{self.work}/nats{i}\" }}\n"
                        f"cluster {{\n  name: check\n"
                        f"  listen: 127.0.0.1:{n['cluster']}\n"
                        f"  routes: [\n{routes}\n  ]\n}}\n")
            self.procs[i] = subprocess.Popen([NATS_SERVER, "-c", conf])
        for n in self.nodes:
            wait_for("a NATS server to be healthy",
                     lambda n=n: self.healthy(n["http"]))

    @staticmethod
    def healthy(port):
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.kill()
                p.wait()


def metric(port, name):
    _, body = request(port, "GET", "/metrics")
    for line in body.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    return None


def report(port, token, n):
    """Reports n concerns, each retried with its Idempotency-Key while the
    primary answers 503 (not yet stored by the cluster), as a client
    would."""
    with open(os.path.join(ROOT, "scripts", "examples", "report.json")) as f:
        body = f.read()
    for i in range(n):
        key = {"Idempotency-Key": f"rc-{time.time_ns()}-{i}"}
        for attempt in range(20):
            status, text = request(port, "POST", "/v1/cases", token, body,
                                   headers=key, timeout=30)
            if status != 503:
                break
            time.sleep(0.5)
        if status not in (200, 201):
            fail(f"report {i}: {status} {text[:500]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    if not os.path.exists(NATS_SERVER):
        fail(f"{NATS_SERVER} is missing: run scripts/setup.sh --test")
    work = tempfile.mkdtemp(prefix="caseledger-replication-")
    cluster = Cluster(work)
    primary = follower = None
    try:
        # 1. The cluster, the tokens, the primary and a follower.
        cluster.start()
        pdata, fdata = os.path.join(work, "a"), os.path.join(work, "b")
        reporter = run(args.bin, "token", "create", "--data", pdata, "--init",
                       "--actor", "user:rc-reporter", "--role", "reporter")
        dsl = run(args.bin, "token", "create", "--data", pdata, "--actor",
                  "user:rc-dsl", "--role", "dsl")
        pport, fport = free_port(), free_port()
        config = os.path.join(work, "primary.json")
        with open(config, "w") as f:
            json.dump({"replication": {"servers": cluster.urls(),
                                       "node": "a", "quorum": True}}, f)
        primary = Server(args.bin, pdata, pport,
                         open(os.path.join(work, "a.log"), "w"),
                         ["--config", config])
        primary.start()
        wait_for("the primary to reach the cluster",
                 lambda: metric(pport, "caseledger_replication_healthy") == 1)
        report(primary.port, reporter, 10)
        follower = Server(
            args.bin, fdata, fport, open(os.path.join(work, "b.log"), "w"),
            [a for u in cluster.urls() for a in ("--nats", u)] +
            ["--node", "b", "--primary", f"http://127.0.0.1:{pport}"],
            command="follow")
        follower.start()

        # 2. Writes are answered once stored; the follower applies them.
        report(primary.port, reporter, 10)
        head = metric(pport, "caseledger_log_position")
        if metric(pport, "caseledger_replication_stored_position") != head:
            fail("the primary answered before the stream stored its writes")
        wait_for("the follower to apply the log",
                 lambda: metric(fport, "caseledger_replication_applied_position")
                 == head)
        if metric(fport, "caseledger_replication_healthy") != 1:
            fail("the follower reports itself unhealthy")
        if not metric(fport, "caseledger_replication_keys_total"):
            fail("the follower took no data key from the key stream")
        status, body = request(fport, "GET", "/v1/learning/summary", reporter)
        if status not in (200, 403):
            fail(f"the follower's learning summary: {status} {body[:500]}")
        # Reads on the follower: answered once their record is stored by
        # the cluster; the primary writes it to its log, which brings it
        # back to the follower.
        status, body = request(fport, "GET", "/v1/cases?limit=5", dsl)
        if status != 200:
            fail(f"the follower's case list: {status} {body[:500]}")
        case_id = json.loads(body)["cases"][0]["case_id"]
        status, body = request(fport, "GET", f"/v1/cases/{case_id}", dsl)
        if status != 200:
            fail(f"a case read on the follower: {status} {body[:500]}")
        # The data keys came with the log: the follower opens the report's
        # names and facts as the primary does.
        path = f"/v1/cases/{case_id}/history"
        shown = []
        for port in (fport, pport):
            status, text = request(port, "GET", path, dsl)
            if status != 200:
                fail(f"the history on port {port}: {status} {text[:500]}")
            shown.append(json.loads(text)["events"][0]["payload"])
        if shown[0] != shown[1] or "Person A" not in json.dumps(shown[0]):
            fail(f"the follower shows the report as {shown[0]}, the primary "
                 f"as {shown[1]}")

        def reads_on_primary():
            status, body = request(pport, "GET",
                                   f"/v1/cases/{case_id}/access-log", dsl)
            if status != 200:
                fail(f"the primary's access log: {status} {body[:500]}")
            return [r for r in json.loads(body)["reads"]
                    if r["who"]["id"] == "user:rc-dsl" and r["what"] in
                    ("list", "state")]
        wait_for("the follower's reads in the primary's log",
                 lambda: len(reads_on_primary()) >= 2)
        status, body = request(fport, "POST", "/v1/cases", reporter, "{}")
        problem = json.loads(body)
        if status != 503 or problem.get("primary") != \
                f"http://127.0.0.1:{pport}":
            fail(f"a write to the follower: {status} {body[:500]}")

        # 3. One NATS server lost: writes go on, and so does the follower.
        cluster.kill(0)
        report(primary.port, reporter, 10)
        head = metric(pport, "caseledger_log_position")
        wait_for("the follower to apply the writes after the loss",
                 lambda: metric(fport, "caseledger_replication_applied_position")
                 == head, timeout=120)

        # 4. The same head on both.
        primary.stop()
        follower.stop()
        heads = [run(args.bin, "verify", "--data", d).split("head at ")[-1]
                 for d in (pdata, fdata)]
        if heads[0] != heads[1]:
            fail(f"the heads differ: {heads}")
        print(f"replication_check: ok: primary and follower verify, head at "
              f"{heads[0]}")
    finally:
        for s in (primary, follower):
            if s and s.proc and s.proc.poll() is None:
                s.kill()
        cluster.stop()
        if os.environ.get("KEEP_WORK") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
