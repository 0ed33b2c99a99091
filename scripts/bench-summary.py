#!/usr/bin/env python3
"""Medians per relay and workload from a scripts/bench-relays.sh output directory (the numbers in
docs/performance.md): scripts/bench-summary.py [DIR, default target/bench-relays]."""
import glob, json, os, re, statistics, sys

out = sys.argv[1] if len(sys.argv) > 1 else "target/bench-relays"
# Every relay with results in the directory, the usual ones first.
known = ["ours", "ours-pgo", "ref-0.10.25", "ref-0.10.25-pgo", "ref-0.10.25-lto", "ref-0.17.10"]
found = {re.sub(r"-(sd500|chat1000|idle500|probe500|probechat1000|capacity)\b.*$", "", os.path.basename(p))
         for p in glob.glob(os.path.join(out, "*.json"))
         if os.path.basename(p) != "presets.json" and not os.path.basename(p).startswith("atonce-")}
relays = [r for r in known if r in found] + sorted(found - set(known))
relays = relays or ["ours", "ref-0.10.25", "ref-0.17.10"]

def load(pattern):
    runs = []
    for path in sorted(glob.glob(os.path.join(out, pattern))):
        try:
            runs.append(json.load(open(path)))
        except Exception:
            pass
    return runs

def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None

def fmt(v, n=1):
    return "-" if v is None else f"{v:.{n}f}"

print("columns: " + " | ".join(relays))
rows = []
for workload, keys in [
    ("sd500", [("delivered_mbps", 0), ("loss_pct", 3), ("relay_cpu_pct", 1), ("delivered_gbps_per_relay_core", 2),
               ("relay_rss_mb", 1), ("relay_rss_per_subscriber_kb", 0), ("latency_p50_ms", 1), ("latency_p99_ms", 1),
               ("setup_p50_ms", 1), ("bench_cpu_pct", 0), ("machine_mem_latency_ns", 0)]),
    ("chat1000", [("loss_pct", 3), ("relay_cpu_pct", 1), ("messages_per_relay_cpu_second", 0), ("relay_rss_mb", 1),
                  ("latency_p50_ms", 1), ("latency_p99_ms", 1), ("bench_cpu_pct", 0), ("machine_mem_latency_ns", 0)]),
    ("idle500", [("relay_rss_mb", 1), ("relay_rss_per_subscriber_kb", 0), ("relay_cpu_pct", 1)]),
]:
    print(f"\n{workload} (medians; per-run loss in brackets)")
    for key, n in keys:
        cells = []
        for relay in relays:
            runs = [r for r in load(f"{relay}-{workload}-[0-9].json")]
            cells.append(fmt(med(runs, key), n) + (f" [{', '.join(fmt(r.get('loss_pct'), 3) for r in runs)}]" if key == "loss_pct" else ""))
        print(f"  {key:32} " + " | ".join(f"{c:>22}" for c in cells))

for workload in ["probe500", "probechat1000"]:
    if not glob.glob(os.path.join(out, f"*-{workload}-[0-9].json")):
        continue
    print(f"\n{workload} (probe subscribers' latency, medians over rounds)")
    for key in ["latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms", "loss_pct"]:
        cells = [fmt(med(load(f"{relay}-{workload}-[0-9].json"), key), 2) for relay in relays]
        print(f"  {key:32} " + " | ".join(f"{c:>22}" for c in cells))
    for key in ["loss_pct", "relay_cpu_pct"]:
        cells = [fmt(med(load(f"{relay}-{workload}-[0-9]-load.json"), key), 2) for relay in relays]
        print(f"  load {key:27} " + " | ".join(f"{c:>22}" for c in cells))

print("\ncapacity (max SD subscribers at < 0.1 % loss, relay held to a fraction of a core)")
for relay in relays:
    vals = []
    for path in sorted(glob.glob(os.path.join(out, f"{relay}-capacity-[0-9].txt"))):
        m = re.search(r"(\d+)\s*$", open(path).read().strip())
        if m:
            vals.append(int(m.group(1)))
    print(f"  {relay:12} rounds {vals} median {statistics.median(vals) if vals else '-'}")

# At once (sd150x2, chat500x2): A and B in the same seconds; the round-by-round ratio is the figure.
for path in sorted(glob.glob(os.path.join(out, "atonce-*.json"))):
    try:
        d = json.load(open(path))
    except Exception:
        continue
    workload = os.path.basename(path)[len("atonce-"):-len(".json")]
    a, b = (re.sub(r"^exec taskset -c \S+ (env (\S+=\S* )+)?", "", d[s]).split()[0] + (" (env)" if " env " in d[s] else "")
            for s in ("a", "b"))
    print(f"\n{workload}, at once ({d['rounds']} rounds, {d['subscribers']} sessions each): A {a}, B {b}")
    for key in ["delivered_gbps_per_relay_core", "messages_per_relay_cpu_second", "relay_cpu_pct", "relay_rss_mb", "loss_pct"]:
        m = d["metrics"][key]
        pairs = [1 / r if r else None for r in m["b_over_a_rounds"]]
        measured = [p for p in pairs if p]
        print(f"  {key:32} A {fmt(m['a_median'], 2):>10} B {fmt(m['b_median'], 2):>10}"
              f"  A/B by round {' '.join(fmt(p, 2) for p in pairs)} (median {fmt(statistics.median(measured) if measured else None, 2)})")
