#!/usr/bin/env python3
"""Erasure, retention and subject access, run as their users would: the
real binary, its command line and its HTTP API, on a store of synthetic
cases made years ago.

  python3 scripts/personal_data_check.py --bin build/release/cli/caseledger

1. `seed` writes cases dated five years back; `token create` gives a DSL
   and a reviewer their tokens.
2. `retention sweep --dry-run` (one-year rules: one for incidents, one for
   any other kind) lists the closed cases that are due, and erases nothing.
3. Over HTTP the DSL asks for one due case to be erased; the reviewer sees
   the request in the governance view. The server stops.
4. `erase` approves it as the reviewer, offline: its keys are destroyed.
5. `export` shows the erased case as "[erased]"; another case's export
   still holds its text, and both exports are in the access logs.
6. `retention sweep` (a rule for incidents only) erases the incidents due;
   `verify` still passes;
   `rebuild` rebuilds the read models; a backup made before any erasure,
   restored with the old store's destroyed-keys list, brings none back.
7. The server, started with both rules, sweeps at start and erases the
   rest; over HTTP the erased cases' histories read "[erased]",
   the governance view lists them, and a case not due keeps its text.
Exits non-zero, saying what failed, at the first surprise.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from crash_loop import Server, request
import first_token  # noqa: F401 (sets CASELEDGER_KEK for the run)

ERASED = "[erased]"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(msg):
    print("personal_data_check: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(binary, *args, ok=True):
    p = subprocess.run([binary, *args], capture_output=True, text=True,
                       timeout=600)
    if ok and p.returncode != 0:
        fail(f"caseledger {' '.join(args)} exited {p.returncode}: "
             f"{p.stderr.strip()[-2000:]}")
    return p


def texts(j):
    """Every string in a JSON value."""
    if isinstance(j, str):
        yield j
    elif isinstance(j, dict):
        for v in j.values():
            yield from texts(v)
    elif isinstance(j, list):
        for v in j:
            yield from texts(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--port", type=int, default=18931)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="caseledger-pd-")
    data = os.path.join(work, "data")
    config = os.path.join(work, "caseledger.json")
    incidents = {"name": "incidents-1y", "kind": "incident", "years": 1}
    with open(config, "w") as f:
        json.dump({"retention": {"rules": [
            incidents, {"name": "closed-1y", "kind": "*", "years": 1}]}}, f)
    # The command line sweeps the incidents; the server, the rest.
    config_incidents = os.path.join(work, "incidents.json")
    with open(config_incidents, "w") as f:
        json.dump({"retention": {"rules": [incidents]}}, f)
    log = open(os.path.join(work, "server.log"), "w")
    try:
        # 0. Where there is no store, the command line says so plainly,
        # and makes none unless asked.
        empty = os.path.join(work, "no-store")
        p = run(args.bin, "token", "create", "--data", empty, "--actor",
                "user:x", "--role", "dsl", ok=False)
        if p.returncode == 0 or "there is no store in" not in p.stderr or \
                os.path.exists(empty):
            fail(f"token create without a store: {p.returncode} "
                 f"{p.stderr.strip()!r}")
        p = run(args.bin, "token", "create", "--data", empty, "--actor",
                "user:x", "--role", "dsl", "--init")
        if not p.stdout.strip():
            fail("token create --init printed no token")

        # 1. Cases from five years ago, and two people to work on them.
        start = time.strftime("%Y-%m-%dT09:00:00Z",
                              time.gmtime(time.time() - 5 * 365 * 86400))
        run(args.bin, "seed", "--data", data, "--cases", "40", "--start",
            start)
        dsl = run(args.bin, "token", "create", "--data", data, "--actor",
                  "user:pd-dsl", "--role", "dsl").stdout.strip()
        reviewer = run(args.bin, "token", "create", "--data", data,
                       "--actor", "user:pd-reviewer", "--role",
                       "reviewer").stdout.strip()

        # 2. What a one-year rule would erase; nothing is erased yet.
        dry = json.loads(run(args.bin, "retention", "sweep", "--data", data,
                             "--config", config, "--dry-run").stdout)
        due = [c["case_id"] for c in dry["cases"]]
        rule_of = {c["case_id"]: c["rule"] for c in dry["cases"]}
        if dry["erased"] != 0 or len(due) < 3:
            fail(f"dry run: expected several due and none erased: {dry}")
        if any(c["outcome"] != "due" for c in dry["cases"]) or \
                set(rule_of.values()) != {"incidents-1y", "closed-1y"}:
            fail(f"dry run: unexpected entries: {dry['cases'][:3]}")

        # A backup made before anything is erased.
        backups = os.path.join(work, "backups")
        run(args.bin, "backup", "--data", data, "--to", backups)
        backup = os.path.join(backups, os.listdir(backups)[0])

        # 3. The DSL asks for one due case to be erased, over HTTP; a new
        # case, reported today, is far from due.
        server = Server(args.bin, data, args.port, log)
        server.start()
        with open(os.path.join(ROOT, "scripts", "examples",
                               "report.json")) as f:
            fresh_report = json.load(f)
        fresh_facts = "Kept: reported today, so no retention rule is due."
        fresh_report["facts"] = fresh_facts
        status, body = request(args.port, "POST", "/v1/cases", dsl,
                               json.dumps(fresh_report))
        if status != 201:
            fail(f"reporting a new case: {status} {body}")
        fresh = json.loads(body)["case_id"]
        target = None
        for case_id in due:
            status, body = request(
                args.port, "POST", f"/v1/cases/{case_id}/commands/"
                "request-erasure", dsl, json.dumps({
                    "erasure_id": "er-1", "scope": "case",
                    "legal_ground": "no_longer_necessary",
                    "rationale": "The person asked; nothing needs it."}))
            if status == 200:
                target = case_id
                break
            if status != 403:  # 403: the DSL is barred from that one
                fail(f"request-erasure on {case_id}: {status} {body}")
        if target is None:
            fail("no due case took an erasure request")
        status, body = request(args.port, "POST",
                               f"/v1/cases/{target}/commands/approve-erasure",
                               dsl, json.dumps({"erasure_id": "er-1"}))
        if status != 403:
            fail(f"the requester approved their own request: {status} {body}")
        for _ in range(200):
            status, body = request(args.port, "GET",
                                   "/v1/governance/erasure-requests",
                                   reviewer)
            if status == 200 and target in body:
                break
            time.sleep(0.05)
        else:
            fail(f"the request is not in the governance view: {body}")
        server.stop()

        # 4. Approved offline, by the reviewer.
        out = run(args.bin, "erase", "--data", data, "--case", target,
                  "--erasure", "er-1", "--actor", "user:pd-reviewer",
                  "--role", "reviewer").stdout
        if "destroyed" not in out:
            fail(f"erase said: {out}")
        again = run(args.bin, "erase", "--data", data, "--case", target,
                    "--erasure", "er-1", "--actor", "user:pd-reviewer",
                    "--role", "reviewer", ok=False)
        if again.returncode == 0:
            fail("erasing twice succeeded")

        # 5. Subject access: the erased case reads as erased; another keeps
        # its text; both exports are logged.
        def export(case_id):
            p = run(args.bin, "export", "--data", data, "--case", case_id,
                    "--actor", "user:pd-dsl", "--role", "dsl", ok=False)
            if p.returncode != 0:
                return None
            return json.loads(p.stdout)

        erased = export(target)
        report = erased["events"][0]["payload"]
        if report.get("facts") != ERASED:
            fail(f"the erased case's facts read {report.get('facts')!r}")
        if erased["events"][-1]["type"] != "PersonalDataErased":
            fail("the export does not end with the erasure")
        other = None
        for case_id in due:
            if case_id != target:
                other = (case_id, export(case_id))
                if other[1] is not None:
                    break
        if other is None or other[1] is None:
            fail("no other due case could be exported")
        facts = other[1]["events"][0]["payload"].get("facts", "")
        if not facts or facts == ERASED:
            fail(f"a case not erased lost its facts: {facts!r}")

        # 6. The command line's sweep erases the incidents that are due;
        # the log verifies.
        by_cli = [c for c in due if c != target and
                  rule_of[c] == "incidents-1y"]
        by_server = [c for c in due if c != target and
                     rule_of[c] == "closed-1y"]
        swept = json.loads(run(args.bin, "retention", "sweep", "--data",
                               data, "--config", config_incidents).stdout)
        if swept["erased"] != len(by_cli) or swept["refused"] != 0:
            fail(f"the sweep erased {swept['erased']} of {len(by_cli)}: "
                 f"{swept}")
        run(args.bin, "verify", "--data", data)
        run(args.bin, "rebuild", "--data", data)
        left = json.loads(run(args.bin, "retention", "sweep", "--data", data,
                              "--config", config, "--dry-run").stdout)
        if sorted(c["case_id"] for c in left["cases"]) != sorted(by_server):
            fail(f"due after the sweep: {left['due']}, not {len(by_server)}")

        # The backup made before the erasures, restored with the old
        # store's destroyed-keys list, does not bring them back (restored
        # without it, it would: the backup holds the keys, wrapped).
        bare = os.path.join(work, "restored-without-list")
        run(args.bin, "restore", "--from", backup, "--data", bare)
        p = run(args.bin, "export", "--data", bare, "--case", target,
                "--actor", "user:pd-dsl", "--role", "dsl")
        back = json.loads(p.stdout)["events"][0]["payload"].get("facts")
        if not back or back == ERASED:
            fail(f"the backup itself reads {back!r}")
        restored = os.path.join(work, "restored")
        run(args.bin, "restore", "--from", backup, "--data", restored,
            "--apply-destroyed", os.path.join(data, "keys.destroyed"))
        p = run(args.bin, "export", "--data", restored, "--case", target,
                "--actor", "user:pd-dsl", "--role", "dsl")
        back = json.loads(p.stdout)["events"][0]["payload"].get("facts")
        if back != ERASED:
            fail(f"restoring the old backup brought back {back!r}")

        # 7. The server with both rules: its sweep at start erases the rest;
        # every route shows the erasures.
        server = Server(args.bin, data, args.port, log)
        server_args = [args.bin, "serve", "--data", data, "--listen",
                       f"127.0.0.1:{args.port}", "--config", config]
        server.proc = subprocess.Popen(server_args, stdout=subprocess.DEVNULL,
                                       stderr=log, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(args.port, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                fail("the server did not become ready")
            time.sleep(0.05)
        expected = (f"retention sweep: {len(by_server)} due, "
                    f"{len(by_server)} erased, 0 refused")
        deadline = time.monotonic() + 60
        while True:
            log.flush()
            with open(os.path.join(work, "server.log")) as f:
                if expected in f.read():
                    break
            if time.monotonic() > deadline:
                fail(f"the server's log does not say {expected!r}")
            time.sleep(0.1)
        for case_id in (target, other[0]):
            status, body = request(args.port, "GET",
                                   f"/v1/cases/{case_id}/history", dsl)
            if status != 200:
                fail(f"history of {case_id}: {status} {body}")
            payload = json.loads(body)["events"][0]["payload"]
            if payload.get("facts") != ERASED:
                fail(f"{case_id} reads {payload.get('facts')!r} after "
                     "erasure")
        status, body = request(args.port, "GET",
                               "/v1/governance/personal-data-erased",
                               reviewer)
        listed = {i["case_id"] for i in json.loads(body)["items"]}
        if status != 200 or not set(due) <= listed:
            fail(f"the governance view lists {len(listed)} of {len(due)}")
        # The case reported today keeps its text.
        status, body = request(args.port, "GET",
                               f"/v1/cases/{fresh}/history", dsl)
        strings = set(texts(json.loads(body))) if status == 200 else set()
        if fresh_facts not in strings or ERASED in strings or fresh in listed:
            fail(f"the case not due ({fresh}) lost its text: {status}")
        server.stop()
        print(f"personal_data_check: ok ({len(due)} cases erased: 1 by "
              f"request, {len(by_cli)} by the command line's retention "
              f"sweep, {len(by_server)} by the server's; exports, verify, "
              "rebuild, restore and the server agree)")
    finally:
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
