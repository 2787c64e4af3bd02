#!/usr/bin/env bash
# End-to-end benchmark of large frames and pod offloads, all rows in one run:
# TCP Gbit/s (iperf3) between two pods on one switch, through
#   - a Linux bridge, pod offloads on, at MTU 1500 and 9000;
#   - Switchyard with pod TX offload off (the sandbox's old setting, the
#     baseline of this work), MTU 1500;
#   - Switchyard with pod checksum offload on (the sandbox's setting: the
#     datapath completes partial checksums; segmentation offload off), at
#     MTU 1500 and 9000 (multi-buffer AF_XDP);
#   - Open vSwitch's userspace datapath with system ports and
#     userspace-tso-enable (pod offloads on), and with AF_XDP ports (its
#     default XDP mode, native on veth; pod TX offload off, which it needs),
#     at MTU 1500, when openvswitch-switch is installed.
# Prints medians and the ratios between rows.
# Usage: benches/e2e-mtu.sh [SECONDS] [RUNS]   (root; cargo build --release --bins)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}
RUNS=${2:-3}
SYCTL=target/release/syctl
[ -x "$SYCTL" ] || { echo "build first: cargo build --release --bins"; exit 1; }
SBDIR=/run/switchyard-e2e-mtu
OVSDIR=/run/switchyard-e2e-mtu-ovs
RESULTS=$(mktemp)
# shellcheck source=benches/lib.sh
. benches/lib.sh

cleanup() {
  ip netns del e2m-a 2>/dev/null || true
  ip netns del e2m-b 2>/dev/null || true
  ip link del e2m-br 2>/dev/null || true
  ovs_down "$OVSDIR"
  ip link del e2m-a-h 2>/dev/null || true
  ip link del e2m-b-h 2>/dev/null || true
  "$SYCTL" sandbox down --dir "$SBDIR" --prefix e2m >/dev/null 2>&1 || true
}
trap 'cleanup; rm -f "$RESULTS"' EXIT
cleanup

row() { echo "$1 $2" | tee -a "$RESULTS"; }

pods() { # MTU: namespaces e2m-a, e2m-b with eth0 <-> e2m-{a,b}-h, up
  ip netns add e2m-a; ip netns add e2m-b
  local ns i=1
  for ns in e2m-a e2m-b; do
    ip link add "$ns-h" type veth peer name eth0 netns "$ns"
    ip link set "$ns-h" mtu "$1" up
    ip -n "$ns" link set eth0 mtu "$1" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.98.0.$i/24" dev eth0
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sh -c 'echo 1 > /sys/class/net/eth0/queues/rx-0/rps_cpus'
    i=$((i + 1))
  done
}
reach() { for _ in $(seq 100); do ip netns exec e2m-a ping -c1 -W1 10.98.0.2 >/dev/null 2>&1 && return 0; done; return 1; }

run_bridge() { # MTU
  pods "$1"
  ip link add e2m-br type bridge
  ip link set e2m-br mtu "$1"
  ip link set e2m-a-h master e2m-br; ip link set e2m-b-h master e2m-br
  ip link set e2m-br up
  reach
  row "bridge-on-$1" "$(tcp_gbps e2m-b 10.98.0.2 e2m-a)"
  cleanup
}

run_ovs() { # NAME TYPE (system: userspace TSO, offloads on; afxdp: pod TX off)
  command -v ovs-vswitchd >/dev/null || { echo "# $1: openvswitch-switch not installed"; return; }
  pods 1500
  if [ "$2" = afxdp ]; then
    for n in e2m-a e2m-b; do ip netns exec $n ethtool -K eth0 tx off >/dev/null; done
    ovs_up "$OVSDIR" e2m-a-h e2m-b-h afxdp best-effort
  else
    ovs_up "$OVSDIR" e2m-a-h e2m-b-h system "" tso
  fi
  if reach; then row "$1" "$(tcp_gbps e2m-b 10.98.0.2 e2m-a)"; else echo "# $1: no connectivity"; fi
  cleanup
}

run_switchyard() { # NAME MTU TXOFF
  "$SYCTL" sandbox up --pods 2 --dir "$SBDIR" --prefix e2m --port-base 18661 --pmd-core 1 --mtu "$2" >/dev/null
  local a b bip
  read -r a b bip < <(python3 -c "import json; p=json.load(open('$SBDIR/state.json'))['pods']; print(p[0]['netns'], p[1]['netns'], p[1]['ip'])")
  if [ "$3" = txoff ]; then
    for n in "$a" "$b"; do ip netns exec "$n" ethtool -K eth0 tx off >/dev/null; done
  fi
  row "$1" "$(tcp_gbps "$b" "$bip" "$a")"
  "$SYCTL" vswitch pmd-stats --vswitchd "$SBDIR/vswitchd.sock" | grep -E 'checksums|cycles per' | sed "s/^/# $1 /" | tee -a "$RESULTS"
  cleanup
}

echo "setup tcp_gbps   (DUR=${DUR}s, RUNS=$RUNS)"
for _ in $(seq "$RUNS"); do
  run_bridge 1500; run_bridge 9000
  run_switchyard sy-txoff-1500 1500 txoff
  run_switchyard sy-on-1500 1500 on
  run_switchyard sy-on-9000 9000 on
  run_ovs ovs-tso-1500 system
  run_ovs ovs-afxdp-1500 afxdp
done

python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 2 and not f[0].startswith("#"):
        rows.setdefault(f[0], []).append(float(f[1]))
med = {k: statistics.median(v) for k, v in rows.items()}
print("\nmedians (TCP Gbit/s):")
for k, v in med.items():
    print("  %-16s %6.2f" % (k, v))
print("\nratios:")
for a, b in [("sy-on-1500", "sy-txoff-1500"), ("sy-on-9000", "sy-on-1500"),
             ("sy-on-1500", "bridge-on-1500"), ("sy-on-9000", "bridge-on-9000"),
             ("sy-on-1500", "ovs-tso-1500"), ("sy-on-1500", "ovs-afxdp-1500"),
             ("sy-on-9000", "ovs-tso-1500")]:
    if med.get(b) and a in med:
        print("  %-12s / %-16s TCP %.2fx" % (a, b, med[a] / med[b]))
PY
grep '^# ' "$RESULTS" | sort | uniq -c | sed 's/^ *[0-9]* //' | head -12
