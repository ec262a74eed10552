#!/usr/bin/env python3
"""Checks schemas/ on its own, without the C++ build.

Usage: python3 schemas/check_schemas.py   (exit 0 when everything passes)

- every file parses as JSON;
- every schema is a valid draft-07 schema and every "$ref" resolves;
- house rules: $schema/$id/title/description, "additionalProperties": false
  on every object with properties, maxItems on every array and maxLength on
  every string that is not an enum, explicit "required", lower_snake_case
  field names and enum values, x-personal repeated at every property whose
  $ref target is personal, free text always x-personal, x-shareable or
  x-released (organisation names excepted), never two annotations;
- every event has examples/<Type>/valid-1.json and invalid-1.json; every
  valid-*.json validates (with format checks); every invalid-*.json fails,
  and every error it raises points at the JSON pointer in its
  invalid-*.expect.json;
- upcasts/RiskAssessed.v1-to-v2.json: each v1 validates against v1, each v2
  against v2, and upcasting v1 gives exactly v2;
- examples use only example.org e-mail addresses and 01632 960xxx numbers.

Needs the `jsonschema` package (4.18 or later, for `referencing`). Without it,
only the parse, $ref and house-rule checks run, and the script says so.
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EVENTS_DIR = os.path.join(HERE, "events")
EXAMPLES_DIR = os.path.join(HERE, "examples")
UPCASTS_DIR = os.path.join(HERE, "upcasts")
BASE = "https://caseledger.example/schemas/events/"
ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"
SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
FREE_TEXT_OK_REFS = {"organisation_name"}

failures = []


def fail(msg):
    failures.append(msg)


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{os.path.relpath(path, HERE)}: does not parse: {e}")
        return None


def pointer(path):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


# ------------------------------------------------------------------ load
schemas = {}  # file name -> schema
for name in sorted(os.listdir(EVENTS_DIR)):
    if name.endswith(".json"):
        s = load(os.path.join(EVENTS_DIR, name))
        if s is not None:
            schemas[name] = s
common = schemas.get("common.v1.json", {})
definitions = common.get("definitions", {})


def resolve_ref(ref, where):
    """Returns (definition name, schema) for a ref, or records a failure."""
    if ref.startswith("#/definitions/"):
        doc, frag = where, ref[len("#"):]
    elif ref.startswith("common.v1.json#/definitions/"):
        doc, frag = "common.v1.json", ref[len("common.v1.json#"):]
    else:
        fail(f"{where}: unsupported $ref {ref!r}")
        return None, None
    node = schemas.get(doc)
    for part in frag.strip("/").split("/"):
        if not isinstance(node, dict) or part not in node:
            fail(f"{where}: $ref {ref!r} does not resolve")
            return None, None
        node = node[part]
    return frag.rsplit("/", 1)[1], node


# ------------------------------------------------------------------ house rules
def walk(schema, where, path, is_property=False, declaring=True):
    """declaring: a declaration (root, property, item, definition), not a
    condition inside allOf/if/then/else/not/contains, where the house rules
    on objects do not apply."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        name, target = resolve_ref(schema["$ref"], where)
        if target is not None and is_property:
            if target.get("x-personal") and not schema.get("x-personal"):
                fail(f"{where}{path}: $ref to personal '{name}' without x-personal at the property")
            if target.get("x-shareable") and not schema.get("x-shareable"):
                fail(f"{where}{path}: $ref to shareable '{name}' without x-shareable at the property")
        resolved_name, resolved = name, target or {}
    else:
        resolved_name, resolved = None, schema
    annotations = [a for a in ("x-personal", "x-shareable", "x-released") if schema.get(a)]
    if len(annotations) > 1:
        fail(f"{where}{path}: more than one of {', '.join(annotations)}")
    if declaring and is_property and resolved.get("type") == "string" and "enum" not in resolved \
            and "const" not in resolved and "format" not in resolved \
            and resolved.get("pattern") in (None, "\\S"):
        marked = any(schema.get(a) or resolved.get(a)
                     for a in ("x-personal", "x-shareable", "x-released"))
        if not marked and resolved_name not in FREE_TEXT_OK_REFS:
            fail(f"{where}{path}: free text neither x-personal nor x-shareable")
    # Bounded input: validation cost stays linear in the body only when every
    # array has maxItems and every string that is not a code has maxLength.
    if declaring and "$ref" not in schema:
        if schema.get("type") == "array" and "maxItems" not in schema:
            fail(f"{where}{path}: array without maxItems")
        if schema.get("type") == "string" and "enum" not in schema \
                and "const" not in schema and "maxLength" not in schema:
            fail(f"{where}{path}: string without maxLength")
        # std::regex recurses once per character an unbounded repetition
        # matches: a pattern repeats only a bounded number of times.
        outside_classes = re.sub(r"\[(?:\\.|[^\]])*\]", "",
                                 schema.get("pattern", ""))
        if re.search(r"(?<!\\)[+*]", outside_classes):
            fail(f"{where}{path}: pattern with an unbounded repetition")
    if "enum" in schema:
        for v in schema["enum"]:
            if not (isinstance(v, str) and SNAKE.match(v)):
                fail(f"{where}{path}: enum value {v!r} is not lower_snake_case")
    if "properties" in schema:
        if declaring and schema.get("type") == "object" and schema.get("additionalProperties") is not False:
            fail(f"{where}{path}: object without additionalProperties: false")
        for req in schema.get("required", []):
            if declaring and schema.get("type") == "object" and req not in schema["properties"]:
                fail(f"{where}{path}: required {req!r} is not a property")
        for k, sub in schema["properties"].items():
            if declaring and schema.get("type") == "object":
                if not SNAKE.match(k):
                    fail(f"{where}{path}/properties/{k}: field name not lower_snake_case")
                if isinstance(sub, dict) and "description" not in sub and "$ref" not in sub:
                    fail(f"{where}{path}/properties/{k}: no description")
            walk(sub, where, f"{path}/properties/{k}", is_property=schema.get("type") == "object",
                 declaring=declaring)
    if "items" in schema:
        walk(schema["items"], where, f"{path}/items", declaring=declaring)
    for key in ("contains", "not", "if", "then", "else", "propertyNames"):
        if key in schema:
            walk(schema[key], where, f"{path}/{key}", declaring=False)
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(key, [])):
            walk(sub, where, f"{path}/{key}/{i}", declaring=False)
    for k, sub in schema.get("definitions", {}).items():
        walk(sub, where, f"{path}/definitions/{k}")


for name, s in schemas.items():
    if s.get("$schema") != "http://json-schema.org/draft-07/schema#":
        fail(f"{name}: $schema is not draft-07")
    if s.get("$id") != BASE + name:
        fail(f"{name}: $id is not {BASE + name}")
    for key in ("title", "description"):
        if not s.get(key):
            fail(f"{name}: no {key}")
    if name != "common.v1.json":
        if not re.match(r"^[A-Z][A-Za-z0-9]+\.v[0-9]+\.json$", name):
            fail(f"{name}: not named <EventType>.v<N>.json")
        if s.get("type") != "object" or s.get("additionalProperties") is not False or "required" not in s:
            fail(f"{name}: must be an object with additionalProperties false and explicit required")
    walk(s, name, "")

# ------------------------------------------------------------------ validation
try:
    import jsonschema
    from jsonschema import Draft7Validator, FormatChecker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7
    HAVE_JSONSCHEMA = True
except ImportError:
    HAVE_JSONSCHEMA = False

validators = {}
if HAVE_JSONSCHEMA:
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s, default_specification=DRAFT7))
        for s in schemas.values() if "$id" in s)
    for name, s in schemas.items():
        try:
            Draft7Validator.check_schema(s)
        except jsonschema.exceptions.SchemaError as e:
            fail(f"{name}: not a valid draft-07 schema: {e.message}")
            continue
        validators[name] = Draft7Validator(s, registry=registry, format_checker=FormatChecker())
    # Resolve every $ref through the registry too.
    for name, s in schemas.items():
        resolver = registry.resolver(base_uri=s["$id"])

        def refs(node):
            if isinstance(node, dict):
                if "$ref" in node:
                    yield node["$ref"]
                for v in node.values():
                    yield from refs(v)
            elif isinstance(node, list):
                for v in node:
                    yield from refs(v)
        for r in refs(s):
            try:
                resolver.lookup(r)
            except Exception as e:  # noqa: BLE001
                fail(f"{name}: $ref {r!r} does not resolve: {e}")


def schema_for_dir(d):
    return f"{d}.json" if re.search(r"\.v[0-9]+$", d) else f"{d}.v1.json"


def errors_of(vname, instance):
    return sorted(validators[vname].iter_errors(instance), key=lambda e: list(e.absolute_path))


EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+)")
PHONE = re.compile(r"(?<![0-9])(?:\+44\s?|0)[0-9][0-9 ]{8,12}[0-9]")

event_names = [n for n in schemas if n != "common.v1.json"]
for n in event_names:
    d = n[: -len(".json")]
    d = d[: -len(".v1")] if d.endswith(".v1") else d
    for f in ("valid-1.json", "invalid-1.json", "invalid-1.expect.json"):
        if not os.path.exists(os.path.join(EXAMPLES_DIR, d, f)):
            fail(f"examples/{d}/{f} is missing")

counts = {"valid": 0, "invalid": 0}
for d in sorted(os.listdir(EXAMPLES_DIR)):
    vname = schema_for_dir(d)
    if vname not in schemas:
        fail(f"examples/{d}: no schema events/{vname}")
        continue
    for f in sorted(os.listdir(os.path.join(EXAMPLES_DIR, d))):
        rel = f"examples/{d}/{f}"
        path = os.path.join(EXAMPLES_DIR, d, f)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        for m in EMAIL.finditer(text):
            if not (m.group(1) == "example.org" or m.group(1).endswith(".example.org")):
                fail(f"{rel}: e-mail domain {m.group(1)} is not example.org")
        for m in PHONE.finditer(text):
            if not re.sub(r"\s", "", m.group(0)).startswith("01632960"):
                fail(f"{rel}: phone number {m.group(0)!r} is not in 01632 960xxx")
        inst = load(path)
        if inst is None or f.endswith(".expect.json") or not HAVE_JSONSCHEMA or vname not in validators:
            continue
        errs = errors_of(vname, inst)
        if f.startswith("valid-"):
            counts["valid"] += 1
            for e in errs:
                fail(f"{rel}: should be valid: {pointer(e.absolute_path)}: {e.message}")
        elif f.startswith("invalid-"):
            counts["invalid"] += 1
            expect = load(path[: -len(".json")] + ".expect.json")
            if not expect or set(expect) != {"pointer", "reason"}:
                fail(f"{rel}: needs a sidecar {{pointer, reason}}")
                continue
            if not errs:
                fail(f"{rel}: should be invalid ({expect['reason']})")
            for e in errs:
                if pointer(e.absolute_path) != expect["pointer"]:
                    fail(f"{rel}: error at {pointer(e.absolute_path)!r}, expected {expect['pointer']!r}: {e.message}")

# ------------------------------------------------------------------ upcasts
SG2C = {
    "risk_identified_action_taken": ("risk_identified", True),
    "risk_identified_no_action_taken": ("risk_identified", False),
    "inconclusive_action_taken": ("inconclusive", True),
    "inconclusive_no_action_taken": ("inconclusive", False),
    "no_risk_identified_action_taken": ("no_risk_identified", True),
    "no_risk_identified_no_action_taken": ("no_risk_identified", False),
    "enquiry_ceased_at_individuals_request_no_action_taken": ("enquiry_ceased_at_individuals_request", False),
}


def upcast_risk_assessed_v1_to_v2(p):
    out = {k: v for k, v in p.items() if k != "sac_risk_outcome"}
    out["risk_finding"], out["action_taken"] = SG2C[p["sac_risk_outcome"]]
    return out


up = load(os.path.join(UPCASTS_DIR, "RiskAssessed.v1-to-v2.json")) or {}
v1_values = set()
for i, pair in enumerate(up.get("pairs", [])):
    v1_values.add(pair["v1"].get("sac_risk_outcome"))
    if upcast_risk_assessed_v1_to_v2(pair["v1"]) != pair["v2"]:
        fail(f"upcasts/RiskAssessed.v1-to-v2.json pair {i}: upcast(v1) != v2")
    if HAVE_JSONSCHEMA:
        for side, vname in (("v1", "RiskAssessed.v1.json"), ("v2", "RiskAssessed.v2.json")):
            for e in errors_of(vname, pair[side]):
                fail(f"upcasts pair {i} {side}: {pointer(e.absolute_path)}: {e.message}")
if v1_values != set(SG2C):
    fail("upcasts/RiskAssessed.v1-to-v2.json does not cover every sac_risk_outcome value")
if HAVE_JSONSCHEMA and "RiskAssessed.v1.json" in schemas:
    enum_v1 = schemas["RiskAssessed.v1.json"]["properties"]["sac_risk_outcome"]["enum"]
    if set(enum_v1) != set(SG2C):
        fail("the upcaster table does not match RiskAssessed.v1 sac_risk_outcome")

# ------------------------------------------------------------------ report
for f in failures:
    print("FAIL", f)
mode = "full (jsonschema %s)" % __import__("importlib.metadata").metadata.version("jsonschema") if HAVE_JSONSCHEMA else \
    "partial: jsonschema not installed, examples not validated"
print(f"{len(schemas)} schema files, {counts['valid']} valid and {counts['invalid']} invalid examples checked; "
      f"mode: {mode}; {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
