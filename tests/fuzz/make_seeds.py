#!/usr/bin/env python3
"""Writes the named seeds of the fuzz targets (tests/fuzz/corpus/<target>/)
from the schemas' examples and the API's example report. The record
decoder's named seeds (record-N: stored records) were written by the
engine's encoder. The corpora's other files (named by their SHA-1) are
inputs the fuzzers found that reach code the seeds did not, merged in with
`TARGET -merge=1 tests/fuzz/corpus/TARGET build/fuzz/corpus/TARGET`.
Run from anywhere: python3 tests/fuzz/make_seeds.py
"""
import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
EXAMPLES = os.path.join(ROOT, "schemas", "examples")

# The command each event type answers (decide_fuzz.cc's kCommands order).
COMMANDS = [
    ("report", "ConcernReported"), ("assign-lead", "LeadAssigned"),
    ("reassign-lead", "LeadReassigned"), ("triage", "CaseTriaged"),
    ("record-outcomes", "DesiredOutcomesRecorded"),
    ("agree-participation", "ParticipationAgreed"),
    ("assess-capacity", "CapacityAssessed"),
    ("record-consent", "ConsentRecorded"),
    ("override-consent", "ConsentOverridden"),
    ("share-information", "InformationShared"),
    ("inform-person", "PersonInformedOfReport"),
    ("assess-risk", "RiskAssessed.v2"),
    ("agree-safety-plan", "SafetyPlanAgreed"),
    ("raise-escalation", "EscalationRaised"),
    ("acknowledge-escalation", "EscalationAcknowledged"),
    ("record-escalation-outcome", "EscalationOutcomeRecorded"),
    ("schedule-review", "ReviewScheduled"),
    ("complete-review", "ReviewCompleted"), ("close", "CaseClosed"),
    ("reopen", "CaseReopened"), ("amend", "EventAmended"),
    ("record-learning", "LearningRecorded"),
    ("screen-learning", "LearningScreened"),
    ("assign-action", "ActionAssigned"), ("complete-action", "ActionCompleted"),
    ("sample-for-audit", "CaseSampledForAudit"),
    ("record-audit-finding", "AuditFindingRecorded"),
    ("schedule-reaudit", "ReauditScheduled"),
    ("request-erasure", "ErasureRequested"),
    ("approve-erasure", "PersonalDataErased"),
    ("refuse-erasure", "ErasureRefused"),
    ("place-legal-hold", "LegalHoldPlaced"),
    ("lift-legal-hold", "LegalHoldLifted"),
    ("apply-retention", "PersonalDataErased"),
]


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def example(kind, n="valid-1"):
    with open(os.path.join(EXAMPLES, kind, n + ".json"), encoding="utf-8") as f:
        return f.read()


# stored_json: every example, as stored payloads are written.
for path in sorted(glob.glob(os.path.join(EXAMPLES, "*", "*.json"))):
    if path.endswith(".expect.json"):
        continue
    kind = os.path.basename(os.path.dirname(path))
    with open(path, encoding="utf-8") as f:
        text = f.read()
    write("stored_json_fuzz", kind + "-" + os.path.basename(path), text)
    write("stored_json_fuzz", kind + "-compact-" + os.path.basename(path),
          json.dumps(json.loads(text), separators=(",", ":")))

# decide: one byte (command, state, actor) and a body.
for i, (command, kind) in enumerate(COMMANDS):
    body = json.loads(example(kind))
    if command == "report":
        body.pop("priority", None)
        body.pop("acknowledgement_due_at", None)
    elif command == "approve-erasure":  # the server fills in the rest
        body = {"erasure_id": "er-1"}
    elif command == "apply-retention":
        body = {"retention_rule": "any-1y"}
    text = json.dumps(body).encode("utf-8")
    for state in (0x00, 0x40, 0x80):  # fresh, open, closed
        pick = (i + state) & 0xFF
        while pick % len(COMMANDS) != i:
            pick += 1
        write("decide_fuzz", f"{command}-{state:02x}", bytes([pick & 0xFF]) + text)

# upcast: every documented RiskAssessed v1 payload, and the v1 example.
with open(os.path.join(ROOT, "schemas", "upcasts",
                       "RiskAssessed.v1-to-v2.json"), encoding="utf-8") as f:
    pairs = json.load(f)["pairs"]
for i, pair in enumerate(pairs):
    write("upcast_fuzz", f"pair-{i}", json.dumps(pair["v1"]))
write("upcast_fuzz", "example-v1", example("RiskAssessed"))

# scrub: identifiers (names; "@" + a contact detail), NUL, text.
write("scrub_fuzz", "names-and-phone",
      "Person A\nQuincey Bramble\n@07700 900123\n\x00"
      "Quincey said Person A rang 07700 900123 on 3rd March 2026.")
write("scrub_fuzz", "email",
      "Anne-Marie O'Brien\n@anne@example.org\n\x00"
      "Mail anne@example.org; the O'Briens were told on March 4, 2026.")
write("scrub_fuzz", "utf8",
      "Zoë\n@Zoë_77\n\x00Zoë_77 wrote to Zoë — café at 10 Rue Émile.")

# http: raw requests, with the harness's placeholders for tokens and a case.
with open(os.path.join(ROOT, "scripts", "examples", "report.json"),
          encoding="utf-8") as f:
    report = json.dumps(json.load(f))


def request(method, target, who=None, body=None, extra=""):
    head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\n"
    if who:
        head += f"Authorization: Bearer @{who}@\r\n"
    head += extra
    if body is not None:
        head += ("Content-Type: application/json\r\n"
                 f"Content-Length: {len(body.encode('utf-8'))}\r\n")
    return head + "\r\n" + (body or "")


write("http_fuzz", "report", request("POST", "/v1/cases", "reporter", report))
write("http_fuzz", "report-keyed",
      request("POST", "/v1/cases", "dsl", report, "Idempotency-Key: k-1\r\n"))
write("http_fuzz", "assign-lead", request(
    "POST", "/v1/cases/@case@/commands/assign-lead", "dsl",
    json.dumps({"lead_actor_id": "user:dsl-1", "role": "dsl",
                "reason": "initial_assignment"}), 'If-Match: "1"\r\n'))
write("http_fuzz", "schedule-review-kind-1", request(
    "POST", "/v1/cases/@case@/commands/schedule-review", "dsl",
    json.dumps({"kind": 1})))
for i, (command, kind) in enumerate(COMMANDS[1:]):
    body = example(kind)
    write("http_fuzz", "command-" + command, request(
        "POST", f"/v1/cases/@case@/commands/{command}", "dsl", body))
for who, target in [
        ("dsl", "/v1/cases/@case@"), ("dsl", "/v1/cases/@case@/history"),
        ("reviewer", "/v1/cases/@case@/replay?at=1"),
        ("reviewer", "/v1/cases/@case@/replay/steps"),
        ("dsl", "/v1/cases/@case@/access-log"),
        ("admin", "/v1/cases/@case@/verify"),
        ("dsl", "/v1/cases?stage=reported&limit=5"),
        ("reviewer", "/v1/governance/overview"),
        ("reviewer", "/v1/governance/consent-overrides"),
        ("reviewer", "/v1/governance/sample?month=2026-11"),
        ("integration", "/v1/learning/feed?after=0&limit=10"),
        ("integration", "/v1/learning/summary"),
        (None, "/readyz"), (None, "/metrics")]:
    name = "get-" + target.strip("/").replace("/", "_").replace("?", "_")
    write("http_fuzz", name, request("GET", target, who))
write("http_fuzz", "revoke", request(
    "POST", "/v1/admin/tokens/revoke", "admin",
    json.dumps({"actor_id": "user:nobody"})))
write("http_fuzz", "chunked", "POST /v1/cases HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer @reporter@\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
write("http_fuzz", "two-keys", request(
    "POST", "/v1/cases", "reporter", report,
    "Idempotency-Key: a\r\nIdempotency-Key: b\r\n"))
