#!/usr/bin/env python3
"""Reads Google Benchmark JSON and prints engine/raw ratios as Markdown."""
import json
import sys

PAIRS = [
    ("durable append, 1 writer", "BM_EngineAppend/min_time:2.000/real_time/threads:1",
     "BM_RawSyncedWrite/min_time:2.000/real_time/threads:1", "items_per_second", "0.90"),
    ("durable append, 8 writers", "BM_EngineAppend/min_time:2.000/real_time/threads:8",
     "BM_RawSyncedWrite/min_time:2.000/real_time/threads:8", "items_per_second", ""),
    ("durable append, 32 writers", "BM_EngineAppend/min_time:2.000/real_time/threads:32",
     "BM_RawSyncedWrite/min_time:2.000/real_time/threads:32", "items_per_second", "2.0"),
    ("durable append, 100 events per call", "BM_EngineAppend100/min_time:2.000/real_time",
     "BM_RawSyncedBatch100/min_time:2.000/real_time", "items_per_second", ""),
    ("read a 1,000-event case", "BM_EngineReadCase1000/min_time:1.000",
     "BM_RawReadRange1000/min_time:1.000", "items_per_second", ""),
    ("scan the whole log", "BM_EngineScan/iterations:3", "BM_RawScan/iterations:3",
     "items_per_second", "0.50"),
]


def main():
    data = json.load(open(sys.argv[1]))
    # With --benchmark_repetitions, use the medians; otherwise the single run.
    runs = {}
    for b in data["benchmarks"]:
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                runs[name] = b
        else:
            runs.setdefault(name, b)
    print("| benchmark | engine | raw RocksDB | ratio | target |")
    print("|---|---|---|---|---|")
    for label, eng, raw, key, target in PAIRS:
        if eng not in runs or raw not in runs:
            continue
        e, r = runs[eng][key], runs[raw][key]
        print(f"| {label} | {e:,.0f} ev/s | {r:,.0f} ev/s | {e / r:.2f}x | "
              f"{'>= ' + target + 'x' if target else ''} |")
    opens = [(n, b) for n, b in runs.items() if n.startswith(("BM_EngineOpen", "BM_RawOpen"))]
    for name, b in opens:
        ms = b["real_time"] if b["time_unit"] == "ms" else b["real_time"] / 1e6
        print(f"| {name.split('/')[0]} ({int(b.get('events', 0)) or ''} events) | "
              f"{ms:.1f} ms | | | {'< 100 ms' if 'Engine' in name else ''} |")
    extra = runs.get("BM_EngineAppend/min_time:2.000/real_time/threads:32", {})
    if "events_per_fsync" in extra:
        print(f"\n32 writers: {extra['events_per_fsync']:.1f} events per fsync, "
              f"{extra['decide_us_per_group']:.0f} us building and "
              f"{extra['write_us_per_group']:.0f} us writing each group.")


if __name__ == "__main__":
    main()
