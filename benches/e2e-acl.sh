#!/usr/bin/env bash
# End-to-end ACL (NetworkPolicy) benchmark, all setups in one run on this
# machine: a client pod reaching a server pod on another subnet, without rules
# and with a stateful policy (the server is isolated but for the client's TCP
# to ports 5201 and 8080; $FILL more rules that never match, default 1000),
# through
#   - Linux bridges routed by a host namespace with iptables in the filter
#     FORWARD chain (conntrack ESTABLISHED,RELATED accept, one rule per
#     policy entry, default drop to the server: the iptables layout of
#     kube-router and Calico without ipsets), and
#   - Switchyard (sandbox --subnets 2, ACLs on the server's switch).
# New TCP connections per second (sy-connrate, $THREADS client threads), connect
# latency p50/p99 and TCP Gbit/s (iperf3).
# Usage: benches/e2e-acl.sh [SECONDS] [RUNS]   (root; build first)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
RUNS=${2:-3}
FILL=${FILL:-1000}
THREADS=${THREADS:-2}
SYCTL=target/release/syctl
RATE=target/release/sy-connrate
[ -x "$SYCTL" ] && [ -x "$RATE" ] || { echo "build first: cargo build --release --bins"; exit 1; }
SBDIR=/run/switchyard-e2e-acl
RESULTS=$(mktemp)
RULES=$(mktemp)
# shellcheck source=benches/lib.sh
. benches/lib.sh

cleanup() {
  pkill -f "$RATE serve" 2>/dev/null || true
  pkill -f "iperf3 -s -D -p 5201" 2>/dev/null || true
  for n in e2a-c e2a-b e2a-h; do ip netns del $n 2>/dev/null || true; done
  "$SYCTL" sandbox down --dir "$SBDIR" --prefix e2a >/dev/null 2>&1 || true
}
trap 'cleanup; rm -f "$RESULTS" "$RULES"' EXIT
cleanup

filler() { # i -> an address that never sends here
  echo "192.168.$(( $1 / 250 )).$(( $1 % 250 + 1 ))"
}

measure() { # name client-ns server-ns server-ip
  ip netns exec "$3" "$RATE" serve 0.0.0.0:8080 >/dev/null 2>&1 &
  ip netns exec "$3" iperf3 -s -D -p 5201 >/dev/null 2>&1
  for _ in $(seq 100); do ip netns exec "$3" ss -ltn | grep -q ':8080' && break; sleep 0.05; done
  ip netns exec "$2" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"
  ip netns exec "$2" "$RATE" first "$4:8080" 10 >/dev/null
  local r g
  r=$(ip netns exec "$2" "$RATE" rate "$4:8080" "$DUR" "$THREADS")
  g=$(ip netns exec "$2" iperf3 -c "$4" -p 5201 -t "$DUR" -J | python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
  python3 -c "import json,sys; r=json.loads(sys.argv[2]); print(sys.argv[1], r['conns_per_s'], r['p50_us'], r['p99_us'], sys.argv[3], r['errors'])" "$1" "$r" "$g" | tee -a "$RESULTS"
  pkill -f "$RATE serve" 2>/dev/null || true
  pkill -f "iperf3 -s -D -p 5201" 2>/dev/null || true
}

iptables_setup() { # rules: 0 or 1
  routed_pair e2a
  if [ "$1" = 1 ]; then
    {
      echo "*filter"
      echo ":POLICY - [0:0]"
      echo "-A FORWARD -m conntrack --ctstate INVALID -j DROP"
      echo "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
      echo "-A FORWARD -o br1 -d 10.97.1.2 -j POLICY"
      for i in $(seq "$FILL"); do echo "-A POLICY -s $(filler "$i") -p tcp --dport 22 -j DROP"; done
      echo "-A POLICY -s 10.97.0.2 -p tcp -m multiport --dports 5201,8080 -j ACCEPT"
      echo "-A POLICY -j DROP"
      echo "COMMIT"
    } | ip netns exec e2a-h iptables-restore
  fi
  measure "iptables-$1" e2a-c e2a-b 10.97.1.2
  cleanup
}

switchyard_setup() { # rules: 0 or 1
  "$SYCTL" sandbox up --pods 2 --subnets 2 --dir "$SBDIR" --prefix e2a --port-base 18781 --pmd-core 1 >/dev/null
  local c b cip bip blp
  read -r c b cip bip blp < <(python3 -c "
import json; s=json.load(open('$SBDIR/state.json')); p=s['pods']
print(p[0]['netns'], p[1]['netns'], p[0]['ip'], p[1]['ip'], p[1]['lport'])")
  local S="$SYCTL --nb http://127.0.0.1:18781"
  if [ "$1" = 1 ]; then
    local sw=${blp%%-*}
    for i in $(seq "$FILL"); do
      echo "$sw to-lport $(( 100 + i % 30000 )) ip4.src == $(filler "$i") && tcp.dst == 22 drop"
    done > "$RULES"
    while read -r s d p m1 m2 m3 m4 m5 m6 m7 a; do
      $S acl-add "$s" "$d" "$p" "$m1 $m2 $m3 $m4 $m5 $m6 $m7" "$a" >/dev/null
    done < "$RULES"
    $S acl-add "$sw" to-lport 30001 "outport == \"$blp\" && ip4.src == $cip && tcp.dst == {5201, 8080}" allow-related >/dev/null
    $S acl-add "$sw" to-lport 1 "outport == \"$blp\" && ip4" drop >/dev/null
  fi
  measure "switchyard-$1" "$c" "$b" "$bip"
  "$SYCTL" --vswitchd "$SBDIR/vswitchd.sock" vswitch ct-stats | sed 's/^/    /' | head -2
  cleanup
}

echo "setup conns_per_s connect_p50_us connect_p99_us tcp_gbps errors   (DUR=${DUR}s, RUNS=$RUNS, THREADS=$THREADS, FILL=$FILL; -0: no rules, -1: the policy)"
for _ in $(seq "$RUNS"); do
  iptables_setup 0; iptables_setup 1; switchyard_setup 0; switchyard_setup 1
done

python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], []).append([float(x) for x in f[1:5]])
med = {k: [statistics.median(r[i] for r in v) for i in range(4)] for k, v in rows.items()}
print("\nmedians:")
print("%-16s %10s %8s %8s %8s" % ("setup", "conns/s", "p50 us", "p99 us", "TCP Gbps"))
for k, m in med.items():
    print("%-16s %10.0f %8.0f %8.0f %8.2f" % (k, *m))
def ratio(a, b, i):
    return med[a][i] / med[b][i] if a in med and b in med and med[b][i] else float("nan")
print("\nratios:")
for a, b in [("switchyard-1", "iptables-1"), ("switchyard-0", "iptables-0"), ("switchyard-1", "switchyard-0"), ("iptables-1", "iptables-0")]:
    print("%-12s / %-12s conns/s %.2fx  p50 latency %.2fx  TCP %.2fx" % (a, b, ratio(a, b, 0), ratio(a, b, 1), ratio(a, b, 3)))
PY
