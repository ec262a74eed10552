#!/usr/bin/env python3
"""Replication, run as its operators would: the real binary as a primary in
quorum mode and as a follower, over a three-server JetStream cluster of
Debian's nats-server that this script starts on loopback.

  python3 scripts/replication_check.py --bin build/release/cli/caseledger

1. The cluster; tokens; the primary (`serve` with a replication section,
   quorum mode) and two followers (`follow --nats ... --node ...`).
2. Concerns reported to the primary, each answered only once the cluster
   stored it; the follower applies them (its /metrics), is ready, serves the
   learning summary, a DSL's case list and a case (whose read records reach
   the primary's access log), shows a report's names and facts as the
   primary does (the data keys came with the log), and refuses a write with a problem naming the
   primary.
3. One NATS server is SIGKILLed: the primary goes on answering writes (two
   of three servers are a quorum) and the follower goes on applying them.
4. Failover: under write load the primary is SIGKILLed; follower b is
   stopped, `caseledger promote`d and served as the primary (epoch 2):
   every write the old primary acknowledged is there, it takes writes, and
   follower c follows it.
5. The old primary, restarted, refuses writes with a problem naming b, and
   its /readyz answers 503.
6. `caseledger verify --checkpoints` on b and c prints the same head (the
   same position and log hash), and each log holds every head a and b
   signed (c checked them as it followed, too).
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
import threading
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


def load(port, token, stop, acked):
    """Reports concerns until `stop` is set or the server is gone; appends
    to `acked` the case id of each the server acknowledged (201)."""
    with open(os.path.join(ROOT, "scripts", "examples", "report.json")) as f:
        body = f.read()
    i = 0
    while not stop.is_set():
        i += 1
        key = {"Idempotency-Key": f"load-{time.time_ns()}-{i}"}
        try:
            status, text = request(port, "POST", "/v1/cases", token, body,
                                   headers=key, timeout=30)
        except Exception:  # noqa: BLE001 (the server was killed mid-answer)
            return
        if status == 201:
            acked.append(json.loads(text)["case_id"])


def start_primary(binary, work, cluster, node, data, port, epoch,
                  signing_key):
    """Serves `data` as primary `node` in quorum mode, signing its head
    with `signing_key` every half second, once it holds `epoch`; returns
    the server and its configuration file."""
    config = os.path.join(work, f"{node}-primary.json")
    with open(config, "w") as f:
        json.dump({"replication": {"servers": cluster.urls(),
                                   "node": node, "quorum": True,
                                   "signing_key_file": signing_key,
                                   "checkpoint_interval_ms": 500}}, f)
    server = Server(binary, data, port,
                    open(os.path.join(work, f"{node}-primary.log"), "w"),
                    ["--config", config])
    server.start()
    wait_for(f"{node} to hold epoch {epoch}",
             lambda: metric(port, "caseledger_replication_epoch") == epoch)
    return server, config


def start_follower(binary, work, cluster, node, data, port, primary_port,
                   public_key):
    server = Server(
        binary, data, port, open(os.path.join(work, f"{node}.log"), "w"),
        [a for u in cluster.urls() for a in ("--nats", u)] +
        ["--node", node, "--primary", f"http://127.0.0.1:{primary_port}",
         "--checkpoint-public-key", public_key],
        command="follow")
    server.start()
    return server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    if not os.path.exists(NATS_SERVER):
        fail(f"{NATS_SERVER} is missing: run scripts/setup.sh --test")
    work = tempfile.mkdtemp(prefix="caseledger-replication-")
    cluster = Cluster(work)
    primary = follower = other = new_primary = old = None
    try:
        # 1. The cluster, the tokens, the primary and a follower.
        cluster.start()
        pdata, fdata, cdata = (os.path.join(work, n) for n in "abc")
        reporter = run(args.bin, "token", "create", "--data", pdata, "--init",
                       "--actor", "user:rc-reporter", "--role", "reporter")
        dsl = run(args.bin, "token", "create", "--data", pdata, "--actor",
                  "user:rc-dsl", "--role", "dsl")
        pport, fport, cport = free_port(), free_port(), free_port()
        signing_key = os.path.join(work, "signing.key")
        public_key = run(args.bin, "keys", "new-signing-key",
                         signing_key).strip().splitlines()[-1]
        primary, config = start_primary(args.bin, work, cluster, "a", pdata,
                                        pport, 1, signing_key)
        report(primary.port, reporter, 10)
        follower = start_follower(args.bin, work, cluster, "b", fdata, fport,
                                  pport, public_key)
        other = start_follower(args.bin, work, cluster, "c", cdata, cport,
                               pport, public_key)

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

        # 4. Failover under write load: the primary is SIGKILLed, b is
        # promoted and serves as the primary; every write the old primary
        # acknowledged is there, and c follows b.
        acked, stop = [], threading.Event()
        loader = threading.Thread(target=load, args=(pport, reporter, stop,
                                                     acked))
        loader.start()
        wait_for("acknowledged writes under load", lambda: len(acked) >= 20,
                 timeout=120)
        primary.kill()
        stop.set()
        loader.join()
        follower.stop()
        nats = [a for u in cluster.urls() for a in ("--nats", u)]
        out = run(args.bin, "promote", "--data", fdata, *nats, "--node", "b")
        if "holds epoch 2" not in out:
            fail(f"promote said: {out}")
        bport = free_port()
        new_primary, _ = start_primary(args.bin, work, cluster, "b", fdata,
                                       bport, 2, signing_key)
        for case_id in acked:
            status, body = request(bport, "GET", f"/v1/cases/{case_id}", dsl)
            if status != 200:
                fail(f"acknowledged case {case_id} on the new primary: "
                     f"{status} {body[:300]}")
        report(bport, reporter, 5)
        head = metric(bport, "caseledger_log_position")
        wait_for("c to follow the new primary",
                 lambda: metric(cport, "caseledger_replication_applied_position")
                 == head, timeout=120)

        wait_for("c to check b's signed heads",
                 lambda: (metric(cport, "caseledger_replication_checkpoints_total")
                          or 0) >= 2, timeout=60)

        # 5. The old primary, restarted, refuses writes (and is not ready).
        old = subprocess.Popen(
            [args.bin, "serve", "--data", pdata, "--listen",
             f"127.0.0.1:{pport}", "--config", config],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(work, "a2.log"), "w"))

        def refused():
            try:
                status, body = request(pport, "POST", "/v1/cases", reporter,
                                       "{}")
            except OSError:
                return False
            return status == 503 and "node b" in body
        wait_for("the old primary to refuse writes", refused, timeout=60)
        status, _ = request(pport, "GET", "/readyz")
        if status != 503:
            fail(f"the old primary's /readyz answered {status}")
        old.send_signal(signal.SIGTERM)
        old.wait(timeout=60)

        # 6. The same head on the new primary and the follower.
        new_primary.stop()
        other.stop()
        heads = []
        for d in (fdata, cdata):
            out = run(args.bin, "verify", "--data", d, "--checkpoints",
                      *nats, "--checkpoint-public-key", public_key)
            if "holds all" not in out:
                fail(f"verify --checkpoints on {d}: {out}")
            heads.append(out.splitlines()[0].split("head at ")[-1])
        if heads[0] != heads[1]:
            fail(f"the heads differ: {heads}")
        print(f"replication_check: ok: {len(acked)} writes acknowledged under "
              f"load before the primary was killed, all on the promoted "
              f"node; it and the follower verify, head at {heads[0]}")
    finally:
        for s in (primary, follower, other, new_primary):
            if s and s.proc and s.proc.poll() is None:
                s.kill()
        if old and old.poll() is None:
            old.kill()
        cluster.stop()
        if os.environ.get("KEEP_WORK") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
