#!/usr/bin/env bash
# End-to-end service (load balancer) benchmark, all setups in one run on this
# machine: a client pod reaching a service VIP (10.96.0.10) whose backend is a
# pod on another subnet, with 1 and with 10,000 services defined, through
#   - Linux bridges + iptables DNAT in kube-proxy's layout (nat PREROUTING ->
#     KUBE-SERVICES -> KUBE-SVC-* -> KUBE-SEP-* DNAT; the service under test is
#     the last of KUBE-SERVICES, where a linear rule scan costs the most), and
#   - Switchyard (sandbox --subnets 2, one load balancer on ls0 with every VIP).
# New TCP connections per second (sy-connrate: connect, half-close, server
# closes; $THREADS client threads, default 2), connect latency p50/p99 (the SYN's trip through
# the path: the first packet of every connection), and TCP Gbit/s to the VIP.
# Usage: benches/e2e-service.sh [SECONDS] [RUNS] [SERVICES]   (root; build first)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
RUNS=${2:-3}
MANY=${3:-10000}
THREADS=${THREADS:-2}
SYCTL=target/release/syctl
RATE=target/release/sy-connrate
[ -x "$SYCTL" ] && [ -x "$RATE" ] || { echo "build first: cargo build --release --bins"; exit 1; }
SBDIR=/run/switchyard-e2e-service
RESULTS=$(mktemp)
VIPS=$(mktemp)
# shellcheck source=benches/lib.sh
. benches/lib.sh

cleanup() {
  pkill -f "$RATE serve" 2>/dev/null || true
  for n in e2s-c e2s-b e2s-h; do ip netns del $n 2>/dev/null || true; done
  "$SYCTL" sandbox down --dir "$SBDIR" --prefix e2s >/dev/null 2>&1 || true
}
trap 'cleanup; rm -f "$RESULTS" "$VIPS"' EXIT
cleanup

client_tuning() { # ns: a load generator's settings
  ip netns exec "$1" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"
}

# The dummy services: 10.100.0.0/14 upwards, all to the same backend.
dummy_vips() { # count backend-ip
  python3 -c "
import sys
for k in range(int(sys.argv[1])):
    print('10.%d.%d.%d' % (100 + (k >> 16), (k >> 8) & 255, k & 255))" "$1"
}

measure() { # name client-ns backend-ns backend-ip
  ip netns exec "$3" "$RATE" serve 0.0.0.0:8080 >/dev/null 2>&1 &
  ip netns exec "$3" iperf3 -s -D -p 5201 >/dev/null 2>&1
  for _ in $(seq 100); do ip netns exec "$3" ss -ltn | grep -q ':8080' && break; sleep 0.05; done
  # Warm-up, then the measurement.
  ip netns exec "$2" "$RATE" first 10.96.0.10:80 10 >/dev/null
  local r g
  r=$(ip netns exec "$2" "$RATE" rate 10.96.0.10:80 "$DUR" "$THREADS")
  g=$(ip netns exec "$2" iperf3 -c 10.96.0.10 -p 5201 -t "$DUR" -J | python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
  python3 -c "import json,sys; r=json.loads(sys.argv[2]); print(sys.argv[1], r['conns_per_s'], r['p50_us'], r['p99_us'], sys.argv[3], r['errors'])" "$1" "$r" "$g" | tee -a "$RESULTS"
  pkill -f "$RATE serve" 2>/dev/null || true
  pkill -f "iperf3 -s -D -p 5201" 2>/dev/null || true
}

iptables_setup() { # services
  routed_pair e2s
  client_tuning e2s-c
  # kube-proxy's nat layout, one KUBE-SVC/KUBE-SEP pair per service port.
  {
    echo "*nat"
    echo ":KUBE-SERVICES - [0:0]"
    echo "-A PREROUTING -j KUBE-SERVICES"
    local i=0
    while read -r v; do
      echo ":KUBE-SVC-$i - [0:0]"; echo ":KUBE-SEP-$i - [0:0]"
      echo "-A KUBE-SERVICES -d $v/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-$i"
      echo "-A KUBE-SVC-$i -j KUBE-SEP-$i"
      echo "-A KUBE-SEP-$i -p tcp -m tcp -j DNAT --to-destination 10.97.1.2:8080"
      i=$((i + 1))
    done < <(dummy_vips $(( $1 - 1 )))
    for port in 80:8080 5201:5201; do
      echo ":KUBE-SVC-T${port%%:*} - [0:0]"; echo ":KUBE-SEP-T${port%%:*} - [0:0]"
      echo "-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport ${port%%:*} -j KUBE-SVC-T${port%%:*}"
      echo "-A KUBE-SVC-T${port%%:*} -j KUBE-SEP-T${port%%:*}"
      echo "-A KUBE-SEP-T${port%%:*} -p tcp -m tcp -j DNAT --to-destination 10.97.1.2:${port##*:}"
    done
    echo "COMMIT"
  } | ip netns exec e2s-h iptables-restore
  measure "iptables-$1" e2s-c e2s-b 10.97.1.2
  cleanup
}

switchyard_setup() { # services
  "$SYCTL" sandbox up --pods 2 --subnets 2 --dir "$SBDIR" --prefix e2s --port-base 18761 --pmd-core 1 >/dev/null
  local c b bip
  read -r c b bip < <(python3 -c "
import json; s=json.load(open('$SBDIR/state.json')); p=s['pods']
print(p[0]['netns'], p[1]['netns'], p[1]['ip'])")
  client_tuning "$c"
  { dummy_vips $(( $1 - 1 )) | sed "s/\$/:80 $bip:8080/; s/^/svc /"
    echo "svc 10.96.0.10:80 $bip:8080"; echo "svc 10.96.0.10:5201 $bip:5201"; } > "$VIPS"
  "$SYCTL" --nb http://127.0.0.1:18761 lb-import "$VIPS" >/dev/null
  "$SYCTL" --nb http://127.0.0.1:18761 ls-lb-add ls0 svc >/dev/null
  measure "switchyard-$1" "$c" "$b" "$bip"
  "$SYCTL" --vswitchd "$SBDIR/vswitchd.sock" vswitch ct-stats | sed 's/^/    /' | head -3
  cleanup
}

echo "setup conns_per_s connect_p50_us connect_p99_us tcp_gbps errors   (DUR=${DUR}s, RUNS=$RUNS, THREADS=$THREADS, services 1 and $MANY)"
for _ in $(seq "$RUNS"); do
  iptables_setup 1; iptables_setup "$MANY"; switchyard_setup 1; switchyard_setup "$MANY"
done

python3 - "$RESULTS" "$MANY" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], []).append([float(x) for x in f[1:5]])
med = {k: [statistics.median(r[i] for r in v) for i in range(4)] for k, v in rows.items()}
print("\nmedians:")
print("%-20s %10s %8s %8s %8s" % ("setup", "conns/s", "p50 us", "p99 us", "TCP Gbps"))
for k, m in med.items():
    print("%-20s %10.0f %8.0f %8.0f %8.2f" % (k, *m))
n = sys.argv[2]
def ratio(a, b, i):
    return med[a][i] / med[b][i] if a in med and b in med and med[b][i] else float("nan")
print("\nratios:")
print("switchyard-%s / iptables-%s   conns/s %.2fx  p50 latency %.2fx  TCP %.2fx" % (n, n, ratio("switchyard-" + n, "iptables-" + n, 0), ratio("switchyard-" + n, "iptables-" + n, 1), ratio("switchyard-" + n, "iptables-" + n, 3)))
print("switchyard-1 / iptables-1           conns/s %.2fx  p50 latency %.2fx  TCP %.2fx" % (ratio("switchyard-1", "iptables-1", 0), ratio("switchyard-1", "iptables-1", 1), ratio("switchyard-1", "iptables-1", 3)))
print("switchyard-%s / switchyard-1       conns/s %.2fx" % (n, ratio("switchyard-" + n, "switchyard-1", 0)))
print("iptables-%s / iptables-1           conns/s %.2fx" % (n, ratio("iptables-" + n, "iptables-1", 0)))
PY
