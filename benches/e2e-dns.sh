#!/usr/bin/env bash
# End-to-end DNS benchmark, both setups in one run on this machine: a client
# pod asking for web.default.svc.cluster.local, answered
#   - by a real DNS server in another pod on the same switch (Debian's dnsmasq,
#     the name in its config, no upstream: the baseline, and the path a
#     cluster DNS pod takes: query and answer both cross Switchyard), and
#   - by Switchyard's datapath from the switch's DNS record (the query is sent
#     to an address nothing answers at).
# Queries per second with dnsperf (one thread on core 0, 100 outstanding, for
# $DUR seconds) and the latency of one query at a time (p50/p99 of 2,000
# sequential queries from a Python client, the same client for both).
# vswitchd runs with --dns-rate 0 (no per-port answer limit; the default,
# 20,000/s per port, would cap the datapath's row).
# Usage: benches/e2e-dns.sh [SECONDS] [RUNS]   (root; build first)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
RUNS=${2:-3}
SYCTL=target/release/syctl
[ -x "$SYCTL" ] || { echo "build first: cargo build --release --bins"; exit 1; }
command -v dnsperf >/dev/null && command -v dnsmasq >/dev/null || { echo "needs dnsperf and dnsmasq (scripts/setup)"; exit 1; }
SBDIR=/run/switchyard-e2e-dns
RESULTS=$(mktemp)
QUERIES=$(mktemp)
NAME=web.default.svc.cluster.local
NOWHERE=10.96.0.99
CLIENT_CPUS=${CLIENT_CPUS:-0}
CLIENTS=${CLIENTS:-1}
THREADS=${THREADS:-1}
OUTSTANDING=${OUTSTANDING:-100}

cleanup() {
  [ -f "$SBDIR/dnsmasq.pid" ] && kill "$(cat "$SBDIR/dnsmasq.pid")" 2>/dev/null || true
  "$SYCTL" sandbox down --dir "$SBDIR" --prefix e2d >/dev/null 2>&1 || true
}
trap 'cleanup; rm -f "$RESULTS" "$QUERIES"' EXIT
cleanup

export SWITCHYARD_SANDBOX_DIR=$SBDIR
"$SYCTL" sandbox up --pods 2 --dir "$SBDIR" --prefix e2d --port-base 16900 --dns-rate 0 >/dev/null
st() { python3 -c "import json,sys; s=json.load(open('$SBDIR/state.json')); print($1)"; }
C=$(st "s['pods'][0]['netns']")
S=$(st "s['pods'][1]['netns']")
SIP=$(st "s['pods'][1]['ip']")
ip netns exec "$S" dnsmasq --no-resolv --no-hosts --bind-interfaces --listen-address="$SIP" \
  --address="/$NAME/10.96.0.10" --cache-size=10000 --pid-file="$SBDIR/dnsmasq.pid"
echo "$NAME A" > "$QUERIES"

latency() { # server: "p50_us p99_us" of 2,000 sequential queries
  ip netns exec "$C" python3 - "$1" "$NAME" <<'EOF'
import socket, struct, sys, time
server, name = sys.argv[1], sys.argv[2]
q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\0\1\0\1"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.connect((server, 53))
lat = []
for i in range(2200):
    t = time.perf_counter_ns()
    s.send(struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + q)
    while True:
        a = s.recv(512)
        if a[:2] == struct.pack(">H", i):
            break
    if i >= 200:
        lat.append((time.perf_counter_ns() - t) / 1000)
lat.sort()
print("%.0f %.0f" % (lat[len(lat) // 2], lat[len(lat) * 99 // 100]))
EOF
}

measure() { # name server
  local qps lat
  qps=$(ip netns exec "$C" taskset -c "$CLIENT_CPUS" dnsperf -s "$2" -d "$QUERIES" -l "$DUR" -q "$OUTSTANDING" -c "$CLIENTS" -T "$THREADS" 2>/dev/null \
    | awk '/Queries per second/ {print int($4)}')
  lat=$(latency "$2")
  echo "$1 $qps $lat" | tee -a "$RESULTS"
}

echo "setup qps p50_us p99_us"
for _ in $(seq "$RUNS"); do
  "$SYCTL" --wait=hv dns-del --if-exists ls0 "$NAME" >/dev/null 2>&1
  measure dnsmasq "$SIP"
  "$SYCTL" --wait=hv dns-add ls0 "$NAME" 10.96.0.10 >/dev/null 2>&1
  measure switchyard "$NOWHERE"
done
"$SYCTL" vswitch pmd-stats 2>/dev/null | grep "dns queries" || true
python3 - "$RESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    n, q, p50, p99 = line.split()
    rows.setdefault(n, []).append((float(q), float(p50), float(p99)))
med = {n: [statistics.median(c) for c in zip(*v)] for n, v in rows.items()}
for n, (q, p50, p99) in med.items():
    print(f"median {n}: {q:.0f} queries/s, p50 {p50:.0f} us, p99 {p99:.0f} us")
s, d = med["switchyard"], med["dnsmasq"]
print(f"switchyard / dnsmasq: qps {s[0] / d[0]:.2f}x  p50 {s[1] / d[1]:.2f}x  p99 {s[2] / d[2]:.2f}x")
EOF
