#!/usr/bin/env bash
# What Switchyard's XDP programs cost per packet, measured by the kernel
# (kernel.bpf_stats_enabled: run_time_ns / run_cnt of each program, read from
# vswitchd's program fds in /proc): the underlay's Geneve program, which looks
# every tunnel packet's source up in the chassis map (underlay trust), against
# the pods' plain redirect program, in one run. Traffic: iperf3 TCP for
# SECONDS between two pods on two chassis (sandbox --chassis 2).
# Usage: benches/xdp-cost.sh [SECONDS]   (root; cargo build --release --bins first)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
SYCTL=target/release/syctl
[ -x "$SYCTL" ] || { echo "build first: cargo build --release --bins"; exit 1; }
SBDIR=/run/switchyard-xdp-cost
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  sysctl -qw kernel.bpf_stats_enabled="$old_stats"
  "$SYCTL" sandbox down --dir "$SBDIR" --prefix xdc >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
"$SYCTL" sandbox up --dir "$SBDIR" --prefix xdc --port-base 16841 --chassis 2 --pods-per-chassis 1 >/dev/null
state=$SBDIR/state.json
ns() { python3 -c "import json;print(json.load(open('$state'))['pods'][$1]['netns'])"; }
ip1=$(python3 -c "import json;print(json.load(open('$state'))['pods'][1]['ip'])")
pid1=$(python3 -c "import json;print(json.load(open('$state'))['nodes'][1]['vswitchd']['pid'])")
sysctl -qw kernel.bpf_stats_enabled=1
# One sample of every XDP program vswitchd (chassis 2, the receiver) holds:
# "tag run_time_ns run_cnt", summed over its fds of one program id.
sample() {
  for f in /proc/"$pid1"/fdinfo/*; do
    awk '/^prog_type:/{t=$2} /^prog_tag:/{g=$2} /^prog_id:/{i=$2} /^run_time_ns:/{r=$2} /^run_cnt:/{c=$2}
         END{if (t==6) print i, g, r, c}' "$f" 2>/dev/null
  done | sort -u
}
before=$(sample)
ip netns exec "$(ns 1)" iperf3 -s -1 -B "$ip1" >/dev/null 2>&1 &
for _ in $(seq 100); do ip netns exec "$(ns 1)" ss -ltn | grep -q ':5201' && break; sleep 0.05; done
ip netns exec "$(ns 0)" iperf3 -c "$ip1" -t "$DUR" >/dev/null
wait || true
after=$(sample)
python3 - "$before" "$after" <<'PY'
import sys
def parse(s):
    out = {}
    for line in s.splitlines():
        i, tag, ns, cnt = line.split()
        out[i] = (tag, int(ns), int(cnt))
    return out
b, a = parse(sys.argv[1]), parse(sys.argv[2])
rows = []
for i, (tag, ns, cnt) in a.items():
    ns0, cnt0 = b.get(i, (tag, 0, 0))[1:]
    n = cnt - cnt0
    if n > 0:
        rows.append((tag, n, (ns - ns0) / n))
# The Geneve program carries every tunnel packet; the pod programs carry the
# pod's own traffic. Tell them apart by which one the most packets ran on
# with the higher cost is not reliable: name them by tag, largest count first.
rows.sort(key=lambda r: -r[1])
print("%-18s %10s %12s" % ("program tag", "packets", "ns/packet"))
for tag, n, per in rows:
    print("%-18s %10d %12.1f" % (tag, n, per))
PY
