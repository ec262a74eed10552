#!/usr/bin/env python3
"""Alerting, run as its users would: the real binary, configured with a
`notify` section, delivering to a local SMTP server (STARTTLS and AUTH
required) and a local HTTPS webhook receiver (tests/notify/sink.py).

  python3 scripts/notify_check.py --bin build/release/cli/caseledger

1. Tokens for a reporter and an admin; the server starts with alerting on.
2. A reporter sends an urgent concern over HTTP, naming people: the DSL
   gets an e-mail and the alternative DSL a signed webhook, and neither
   holds a name, a contact detail or the report's words.
3. The admin sees both delivered in GET /v1/admin/notifications, and
   /metrics counts them.
4. The server is killed (SIGKILL) and started again: nothing is sent twice.
5. A concern naming the DSL reaches the alternative DSL only.
Exits non-zero, saying what failed, at the first surprise.
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from check_steps import fail, run, wait_for
from crash_loop import Server, request
import first_token  # noqa: F401 (sets CASELEDGER_KEK for the run)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERSONAL = ["Alex Placeholder", "Sam Stand-in", "sam.standin@example.net",
            "07700 900456", "mocking their accent"]
SECRET = "whsec_" + base64.b64encode(b"notify-check-webhook-key-32bytes").decode()


def received(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--port", type=int, default=18947)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="caseledger-notify-")
    data = os.path.join(work, "data")
    out = os.path.join(work, "received.jsonl")
    log = open(os.path.join(work, "server.log"), "w")
    sink = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(ROOT, "tests", "notify", "sink.py"),
         "--dir", work, "--out", out, "--smtp-user", "caseledger",
         "--smtp-password", "check-password", "--webhook-secret", SECRET],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    server = None
    try:
        ready = json.loads(sink.stdout.readline() or "{}")
        if "smtp_port" not in ready:
            fail("the local SMTP and webhook receivers did not start")
        with open(os.path.join(work, "smtp.password"), "w") as f:
            f.write("check-password\n")
        with open(os.path.join(work, "hook.secret"), "w") as f:
            f.write(SECRET + "\n")
        config = os.path.join(work, "caseledger.json")
        with open(config, "w") as f:
            json.dump({"notify": {
                "console_url": "https://console.example.org",
                "recipients": {"dsl": ["user:nc-dsl"],
                               "alt_dsl": ["user:nc-alt"]},
                "contacts": {"user:nc-dsl": {"email": "dsl@example.org"},
                             "user:nc-alt": {"webhook": "on-call"}},
                "smtp": {"url": f"smtp://127.0.0.1:{ready['smtp_port']}",
                         "from": "caseledger@example.org",
                         "username": "caseledger",
                         "password_file": os.path.join(work, "smtp.password"),
                         "ca_file": ready["ca_file"]},
                "webhooks": {"on-call": {
                    "url": f"https://127.0.0.1:{ready['https_port']}/hook",
                    "secret_file": os.path.join(work, "hook.secret"),
                    "ca_file": ready["ca_file"]}},
                "retry": {"max_attempts": 5, "initial_ms": 200,
                          "max_ms": 2000}}}, f)

        # 1. Tokens, then the server with alerting on.
        reporter = run(args.bin, "token", "create", "--data", data, "--init",
                       "--actor", "user:nc-reporter", "--role", "reporter")
        admin = run(args.bin, "token", "create", "--data", data, "--actor",
                    "user:nc-admin", "--role", "admin")
        server = Server(args.bin, data, args.port, log, ["--config", config])
        server.start()

        # 2. An urgent concern that names people.
        with open(os.path.join(ROOT, "scripts", "examples",
                               "report.json")) as f:
            report = json.load(f)
        report["people_involved"][0]["name"] = "Alex Placeholder"
        report["people_involved"][0]["contact"] = {
            "email": "sam.standin@example.net", "phone": "07700 900456"}
        report["people_involved"][1]["name"] = "Sam Stand-in"
        report["immediate_risk"] = True
        report["emergency_services_called"] = True
        report["actions_taken"] = "Stayed with Alex Placeholder; called 999."
        status, body = request(args.port, "POST", "/v1/cases", reporter,
                               json.dumps(report))
        if status != 201:
            fail(f"report: {status} {body}")
        case_id = json.loads(body)["case_id"]
        got = wait_for("an e-mail and a webhook",
                       lambda: len(received(out)) >= 2 and received(out))
        by = {g["channel"]: g for g in got}
        mail, hook = by.get("smtp"), by.get("webhook")
        if not mail or not hook:
            fail(f"expected one e-mail and one webhook: {got}")
        if mail["rcpt_tos"] != ["dsl@example.org"] or not mail["tls"] or \
                mail["auth_user"] != "caseledger":
            fail(f"the e-mail: {mail}")
        if case_id not in mail["subject"] or "URGENT" not in mail["subject"]:
            fail(f"the e-mail's subject: {mail['subject']}")
        if f"https://console.example.org/#/case/{case_id}" not in mail["data"]:
            fail("the e-mail has no link to the case")
        if not hook["signature_valid"] or not hook["accepted"]:
            fail(f"the webhook: {hook}")
        if json.loads(hook["body"])["data"]["case_id"] != case_id:
            fail("the webhook names another case")
        for g in got:
            text = g.get("data") or g.get("body") or ""
            for p in PERSONAL:
                if p in text:
                    fail(f"{p!r} was sent by {g['channel']}")

        # 3. What the admin sees.
        # (A receiver has a message a moment before its outcome is
        # recorded.)
        def listed_delivered():
            status, body = request(args.port, "GET",
                                   "/v1/admin/notifications", admin)
            if status != 200:
                fail(f"admin list: {status} {body[:2000]}")
            j = json.loads(body)
            return j if len(j["notifications"]) == 2 and all(
                n["status"] == "delivered" for n in j["notifications"]) \
                else None
        listed = wait_for("both delivered in the admin list",
                          listed_delivered)
        ids = {n["id"] for n in listed["notifications"]}
        if ids != {hook["webhook_id"], mail["message_id"][1:].split("@")[0]}:
            fail(f"the ids sent are not the ids listed: {ids}")
        _, metrics = request(args.port, "GET", "/metrics")
        for line in ('caseledger_notify_attempts_total{channel="email",'
                     'result="ok"} 1',
                     'caseledger_notify_attempts_total{channel="webhook",'
                     'result="ok"} 1', "caseledger_notify_pending 0"):
            if line not in metrics:
                fail(f"/metrics lacks {line!r}")

        # 4. Killed and started again: nothing twice.
        server.kill()
        server.start()
        time.sleep(2)
        if len(received(out)) != 2:
            fail(f"after a restart, {len(received(out)) - 2} sent again")

        # 5. A concern naming the DSL: the alternative DSL only.
        report["people_involved"][1].update(
            {"is_dsl": True, "actor_id": "user:nc-dsl"})
        status, body = request(args.port, "POST", "/v1/cases", reporter,
                               json.dumps(report))
        if status != 201:
            fail(f"report naming the DSL: {status} {body}")
        wait_for("the alternative DSL's webhook",
                 lambda: len(received(out)) >= 3)
        time.sleep(1)
        latest = received(out)[2:]
        if len(latest) != 1 or latest[0]["channel"] != "webhook":
            fail(f"a concern naming the DSL reached: {latest}")
        server.stop()
        server = None
        print(f"notify_check: ok (case {case_id}: e-mail over STARTTLS and a "
              "signed webhook, no personal data, listed and counted, nothing "
              "resent after SIGKILL, a concern naming the DSL to the "
              "alternative only)")
    finally:
        if server and server.proc and server.proc.poll() is None:
            server.kill()
        # Killed outright: every message it received is on disk already.
        sink.kill()
        sink.wait()
        log.close()
        if os.environ.get("CASELEDGER_KEEP"):
            print("notify_check: kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
