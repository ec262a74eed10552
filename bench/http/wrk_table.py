#!/usr/bin/env python3
"""Reads the wrk outputs of bench/http/run_http_bench.sh and prints them as a
Markdown table: one row per benchmark, each the median over its repeats, with
req/s as a ratio to the minimal-server ceiling measured in the same run.

    wrk_table.py RESULTS_DIR

RESULTS_DIR holds NAME.REPEAT.txt, the stdout of `wrk --latency` with one of
the bench/http/*.lua scripts (which add "bench non-2xx:" and "bench socket
errors:" lines). Exits 1 if any run had a non-2xx answer or a socket error,
or if an output cannot be parsed, after printing the table.
"""
import pathlib
import re
import statistics
import sys

# In the order of the table; the last one is the ceiling.
BENCHMARKS = [
    ("post_report", "POST /v1/cases (new concern, durable append)"),
    ("get_case", "GET /v1/cases/{id} (+ durable access-log append)"),
    ("feed_page", "GET /v1/learning/feed?after=N&limit=100"),
    ("list_page", "GET /v1/cases?limit=100 (+ 100 durable access-log appends)"),
    ("minimal_get", "ceiling: minimal Beast server, GET, fixed ~1.2 KB body"),
]
CEILING = "minimal_get"

# wrk prints times with these units (src/units.c).
UNIT_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(value, unit):
    return float(value) * UNIT_US[unit]


def parse(path):
    text = path.read_text(errors="replace")
    run = {}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not m:
        raise ValueError(f"{path}: no Requests/sec line")
    run["rps"] = float(m.group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if not m:
            raise ValueError(f"{path}: no {pct}% latency line (--latency?)")
        run["p" + pct] = to_us(m.group(1), m.group(2))
    m = re.search(r"^bench non-2xx: (\d+)", text, re.M)
    if not m:
        raise ValueError(f"{path}: no 'bench non-2xx' line (Lua done())")
    run["non2xx"] = int(m.group(1))
    m = re.search(r"^bench socket errors: connect (\d+), read (\d+), "
                  r"write (\d+), timeout (\d+)", text, re.M)
    run["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    m = re.search(r"^\s*(\d+) requests in ", text, re.M)
    requests = int(m.group(1)) if m else 0
    m = re.search(r"^bench server cpu ticks: (\d+) of (\d+) per second",
                  text, re.M)
    # The server's CPU time per request answered, in microseconds.
    run["cpu_us"] = (int(m.group(1)) * 1e6 / int(m.group(2)) / requests
                     if m and requests else None)
    m = re.search(r"^bench first non-2xx: (.*)$", text, re.M)
    run["first_bad"] = m.group(1) if m else ""
    return run


def fmt_ms(us):
    ms = us / 1000.0
    return f"{ms:.2f} ms" if ms < 100 else f"{ms:.0f} ms"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    results = pathlib.Path(sys.argv[1])
    runs = {}
    failed = False
    for name, _ in BENCHMARKS:
        for path in sorted(results.glob(f"{name}.*.txt")):
            try:
                runs.setdefault(name, []).append(parse(path))
            except ValueError as e:
                print(f"error: {e}", file=sys.stderr)
                failed = True

    def median(name, key):
        return statistics.median(r[key] for r in runs[name])

    ceiling = median(CEILING, "rps") if CEILING in runs else None
    repeats = max((len(v) for v in runs.values()), default=0)
    print(f"| benchmark | req/s | p50 | p99 | ratio to ceiling (req/s) "
          f"| server CPU per request | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    notes = []
    for name, label in BENCHMARKS:
        if name not in runs:
            print(f"| {label} | (not run) | | | | | |")
            failed = True
            continue
        rps = median(name, "rps")
        ratio = f"{rps / ceiling:.3f}" if ceiling else "n/a"
        bad = sum(r["non2xx"] for r in runs[name])
        sock = sum(r["socket_errors"] for r in runs[name])
        cell = str(bad) + (f" (+{sock} socket errors)" if sock else "")
        cpus = [r["cpu_us"] for r in runs[name] if r["cpu_us"] is not None]
        cpu = f"{statistics.median(cpus):.0f} µs" if cpus else "n/a"
        print(f"| {label} | {rps:,.0f} | {fmt_ms(median(name, 'p50'))} "
              f"| {fmt_ms(median(name, 'p99'))} | {ratio} | {cpu} | {cell} |")
        if len(runs[name]) > 1:
            each = ", ".join(f"{r['rps']:,.0f}" for r in runs[name])
            notes.append(f"{name}: req/s per repeat {each}")
        if bad or sock:
            failed = True
            first = next((r["first_bad"] for r in runs[name] if r["first_bad"]),
                         "")
            notes.append(f"{name}: {bad} non-2xx, {sock} socket errors"
                         + (f"; first: {first}" if first else ""))
    if repeats > 1:
        print(f"\nMedians over {repeats} repeats.")
    for n in notes:
        print(f"- {n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
