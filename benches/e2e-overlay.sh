#!/usr/bin/env bash
# End-to-end overlay benchmark, all setups in one run on this machine: two pods
# on two "nodes" (network namespaces on an underlay bridge), one L2 network
# across them, carried by
#   - the kernel's VXLAN (the Flannel-style baseline: a bridge per node with the
#     pod's veth and a vxlan device), pod TX offload on and off, and
#   - Switchyard (sandbox --chassis 2: a vswitchd per node, Geneve on AF_XDP).
# Pod MTU 1400 everywhere. TCP Gbit/s with iperf3; 64-byte packets/s from one
# trafgen process, counted at the receiving pod.
# Usage: benches/e2e-overlay.sh [SECONDS] [RUNS]   (root; cargo build --release --bins first)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-8}
RUNS=${2:-3}
SYCTL=target/release/syctl
[ -x "$SYCTL" ] || { echo "build first: cargo build --release --bins"; exit 1; }
command -v trafgen >/dev/null || { echo "trafgen missing: scripts/setup"; exit 1; }
# shellcheck source=benches/lib.sh
. benches/lib.sh
SBDIR=/run/switchyard-e2e-overlay
RESULTS=$(mktemp)

cleanup() {
  # Links first: a namespace's veths go with it, but asynchronously.
  for l in e2o-n1u e2o-n2u e2o-ul; do ip link del $l 2>/dev/null || true; done
  for n in e2o-a e2o-b e2o-n1 e2o-n2; do ip netns del $n 2>/dev/null || true; done
  "$SYCTL" sandbox down --dir "$SBDIR" --prefix e2g >/dev/null 2>&1 || true
}
trap 'cleanup; rm -f "$RESULTS"' EXIT
cleanup

pod() { # ns node-ns mac ip
  ip link add eth0 netns "$1" type veth peer name "$1" netns "$2"
  ip -n "$1" link set lo up
  ip -n "$1" link set eth0 address "$3" mtu 1400
  ip -n "$1" addr add "$4/24" dev eth0
  ip -n "$1" link set eth0 up
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$1" sh -c 'echo 1 > /sys/class/net/eth0/queues/rx-0/rps_cpus'
  ip -n "$2" link set "$1" mtu 1400 master br0 up
}

vxlan() { # offloads: on|txoff
  ip link add e2o-ul type bridge; ip addr add 172.30.9.1/24 dev e2o-ul; ip link set e2o-ul up
  for k in 1 2; do
    ip netns add e2o-n$k
    ip link add e2o-n${k}u type veth peer name ul0 netns e2o-n$k
    ip link set e2o-n${k}u master e2o-ul up
    ip -n e2o-n$k addr add 172.30.9.1$k/24 dev ul0
    ip -n e2o-n$k link set ul0 up; ip -n e2o-n$k link set lo up
    ip -n e2o-n$k link add br0 type bridge; ip -n e2o-n$k link set br0 up
    ip -n e2o-n$k link add vxlan0 type vxlan id 42 dstport 4789 local 172.30.9.1$k remote 172.30.9.1$((3 - k)) dev ul0
    ip -n e2o-n$k link set vxlan0 master br0 up
  done
  ip netns add e2o-a; ip netns add e2o-b
  pod e2o-a e2o-n1 0a:00:00:00:00:01 10.97.0.1
  pod e2o-b e2o-n2 0a:00:00:00:00:02 10.97.0.2
  if [ "$1" = txoff ]; then
    for n in e2o-a e2o-b; do ip netns exec $n ethtool -K eth0 tx off >/dev/null; done
  fi
  ip netns exec e2o-a ping -c2 -W1 10.97.0.2 >/dev/null
  measure "kernel-vxlan-$1" e2o-a e2o-b 0a:00:00:00:00:01 0a:00:00:00:00:02 10.97.0.2
  cleanup
}

switchyard() {
  "$SYCTL" sandbox up --pods 2 --chassis 2 --dir "$SBDIR" --prefix e2g --port-base 18841 --pmd-core 1 >/dev/null
  # shellcheck disable=SC2046
  measure switchyard $(python3 -c "
import json; p=json.load(open('$SBDIR/state.json'))['pods']
print(p[0]['netns'], p[1]['netns'], p[0]['mac'], p[1]['mac'], p[1]['ip'])")
  "$SYCTL" vswitch tunnel-list --vswitchd "$SBDIR/vswitchd-ch1.sock" | sed 's/^/    /'
  cleanup
}

measure() { # name srcns dstns srcmac dstmac dstip
  local g p cfg
  g=$(tcp_gbps "$3" "$6" "$2")
  cfg=$(l2_frame_conf "$4" "$5")
  p=$(trafgen_pps "$2" "$3" "$cfg")
  rm -f "$cfg"
  echo "$1 $g $p" | tee -a "$RESULTS"
}

echo "setup tcp_gbps pps_delivered pps_offered   (DUR=${DUR}s, RUNS=$RUNS)"
for _ in $(seq "$RUNS"); do
  vxlan on; vxlan txoff; switchyard
done
report "$RESULTS" kernel-vxlan-txoff kernel-vxlan-on
