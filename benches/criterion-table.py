#!/usr/bin/env python3
"""Prints criterion's results under DIR (target/criterion) as BENCHMARKS.md's
tables: every bench with its median time and rate, then the ratios the file
quotes, each to a baseline of the same run."""
import json, os, sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
res = {}
for dirpath, _, files in os.walk(root):
    if not dirpath.endswith(os.sep + "new") or "benchmark.json" not in files:
        continue
    b = json.load(open(os.path.join(dirpath, "benchmark.json")))
    e = json.load(open(os.path.join(dirpath, "estimates.json")))
    ns = e["median"]["point_estimate"]
    n = (b.get("throughput") or {}).get("Elements", 1)
    res[b["full_id"]] = (ns, n)

def rate(k):
    ns, n = res[k]
    return n / ns * 1e3  # M elements per second

print("| bench | median time / iteration | elements | rate |")
print("|---|---|---|---|")
for k in sorted(res):
    ns, n = res[k]
    t = "%.1f ns" % ns if ns < 1e3 else ("%.2f µs" % (ns / 1e3) if ns < 1e6 else "%.1f ms" % (ns / 1e6))
    r = rate(k)
    rs = "%.2f M/s" % r if r >= 0.01 else "%.1f /s" % (r * 1e6)
    print("| `%s` | %s | %d | %s |" % (k, t, n, rs))

RATIOS = [
    ("L2, 10,000 MACs / 1 MAC", "l2_pipeline_64B/10000_macs", "l2_pipeline_64B/1_macs"),
    ("routed / L2", "routed_pipeline_64B/10_routes", "l2_pipeline_64B/1_macs"),
    ("routed, 100,000 routes / 10", "routed_pipeline_64B/100000_routes", "routed_pipeline_64B/10_routes"),
    ("Geneve encap / L2", "geneve_64B/encap", "l2_pipeline_64B/1_macs"),
    ("Geneve decap / L2", "geneve_64B/decap", "l2_pipeline_64B/1_macs"),
    ("service, 1 VIP / routed", "service_path_64B/1_vips", "routed_pipeline_64B/10_routes"),
    ("service, 100,000 VIPs / 1 VIP", "service_path_64B/100000_vips", "service_path_64B/1_vips"),
    ("ACLs, 1 / none", "acl_path_64B/1_acls", "acl_path_64B/0_acls"),
    ("ACLs, 1,000 / none", "acl_path_64B/1000_acls", "acl_path_64B/0_acls"),
    ("LB setup, 100,000 VIPs / 1", "lb_connection_setup/100000_vips", "lb_connection_setup/1_vips"),
]
print()
print("| ratio (same run) | value |")
print("|---|---|")
for name, a, b in RATIOS:
    if a in res and b in res:
        print("| %s | %.2f× |" % (name, rate(a) / rate(b)))
