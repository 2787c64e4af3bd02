#!/usr/bin/env bash
# End-to-end routed benchmark, all setups in one run on this machine: two pods on
# different subnets (10.98.0.0/24 and 10.98.1.0/24), routed by
#   - a Linux router namespace with ip_forward (pod TX offload on, and off), and
#   - Switchyard (sandbox --subnets 2: ls0 -- lr0 -- ls1 on AF_XDP, pod TX off).
# TCP Gbit/s with iperf3, and 64-byte UDP packets/s from one trafgen process
# addressed to the other subnet through the gateway MAC, counted at the receiver.
# Usage: benches/e2e-routed.sh [SECONDS] [RUNS]   (root; cargo build --release --bins first)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-8}
RUNS=${2:-3}
SYCTL=target/release/syctl
[ -x "$SYCTL" ] || { echo "build first: cargo build --release --bins"; exit 1; }
command -v trafgen >/dev/null || { echo "trafgen missing: scripts/setup"; exit 1; }
SBDIR=/run/switchyard-e2e-routed
RESULTS=$(mktemp)
# shellcheck source=benches/lib.sh
. benches/lib.sh

cleanup() {
  for n in e2r-a e2r-b e2r-r; do ip netns del $n 2>/dev/null || true; done
  "$SYCTL" sandbox down --dir "$SBDIR" --prefix e2r >/dev/null 2>&1 || true
}
trap 'cleanup; rm -f "$RESULTS"' EXIT
cleanup

pod() { # ns mac ip/len gw
  ip -n "$1" link set lo up
  ip -n "$1" link set eth0 address "$2"
  ip -n "$1" addr add "$3" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" route add default via "$4"
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$1" sh -c 'echo 1 > /sys/class/net/eth0/queues/rx-0/rps_cpus'
}

linux_router() { # offloads: on|txoff
  ip netns add e2r-a; ip netns add e2r-b; ip netns add e2r-r
  ip link add eth0 netns e2r-a type veth peer name ra netns e2r-r
  ip link add eth0 netns e2r-b type veth peer name rb netns e2r-r
  ip -n e2r-r addr add 10.98.0.1/24 dev ra; ip -n e2r-r addr add 10.98.1.1/24 dev rb
  ip -n e2r-r link set ra up; ip -n e2r-r link set rb up; ip -n e2r-r link set lo up
  ip netns exec e2r-r sysctl -qw net.ipv4.ip_forward=1
  pod e2r-a 0a:00:00:00:00:01 10.98.0.2/24 10.98.0.1
  pod e2r-b 0a:00:00:00:00:02 10.98.1.2/24 10.98.1.1
  if [ "$1" = txoff ]; then
    for n in e2r-a e2r-b; do ip netns exec $n ethtool -K eth0 tx off >/dev/null; done
  fi
  ip netns exec e2r-a ping -c1 -W1 10.98.1.2 >/dev/null
  measure "linux-router-$1" e2r-a e2r-b 0a:00:00:00:00:01 "$(ip netns exec e2r-r cat /sys/class/net/ra/address)" 10.98.0.2 10.98.1.2
  cleanup
}

switchyard() {
  "$SYCTL" sandbox up --pods 2 --subnets 2 --subnet 10.98.0.0/24 --dir "$SBDIR" --prefix e2r --port-base 18741 --pmd-core 1 >/dev/null
  # shellcheck disable=SC2046
  measure switchyard $(python3 -c "
import json; s=json.load(open('$SBDIR/state.json')); p=s['pods']; g=s['switches'][0]['gateway_mac']
print(p[0]['netns'], p[1]['netns'], p[0]['mac'], g, p[0]['ip'], p[1]['ip'])")
  "$SYCTL" vswitch pmd-stats --vswitchd "$SBDIR/vswitchd.sock" | sed 's/^/    /'
  cleanup
}

pps() { # src-ns dst-ns src-mac gw-mac src-ip dst-ip -> "delivered offered"
  local cfg; cfg=$(mktemp)
  local sm dm si di
  sm=$(echo "$3" | sed 's/^/0x/; s/:/, 0x/g'); dm=$(echo "$4" | sed 's/^/0x/; s/:/, 0x/g')
  si=$(echo "$5" | tr . ,); di=$(echo "$6" | tr . ,)
  # 60-byte UDP/IPv4 frames (64 on the wire) to the discard port, TTL 64, IP
  # checksum filled by trafgen, UDP checksum 0 (none).
  cat > "$cfg" <<CFG
{ $dm, $sm, c16(0x0800),
  0x45, 0x00, c16(46), c16(1), c16(0), 64, 17, csumip(14, 33), $si, $di,
  c16(40000), c16(9), c16(26), c16(0), fill(0x00, 18) }
CFG
  trafgen_pps "$1" "$2" "$cfg"
  rm -f "$cfg"
}

measure() { # name srcns dstns srcmac gwmac srcip dstip
  local g p
  g=$(tcp_gbps "$3" "$7" "$2")
  p=$(pps "$2" "$3" "$4" "$5" "$6" "$7")
  echo "$1 $g $p" | tee -a "$RESULTS"
}

echo "setup tcp_gbps pps_delivered pps_offered   (DUR=${DUR}s, RUNS=$RUNS)"
for _ in $(seq "$RUNS"); do
  linux_router on; linux_router txoff; switchyard
done

report "$RESULTS" linux-router-txoff linux-router-on
