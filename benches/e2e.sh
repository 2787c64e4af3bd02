#!/usr/bin/env bash
# End-to-end benchmark, all setups in one run on this machine:
#   TCP Gbit/s (iperf3) and 64-byte packets/s delivered (trafgen flood) between two
#   namespaces, through: a direct veth pair, a Linux bridge (offloads on, and pod TX
#   offload off), Switchyard (AF_XDP), and Open vSwitch's userspace datapath with
#   AF_XDP ports when ovs-vswitchd is installed. Switchyard and OVS each run
#   twice: in their default XDP mode (Switchyard generic on veth, OVS
#   best-effort, i.e. native on veth) and in the other side's, so one ratio
#   compares the same mode. Prints medians, ratios and each row's XDP mode.
# Usage: benches/e2e.sh [SECONDS] [RUNS]   (root; build with cargo build --release --bins)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
RUNS=${2:-3}
SYCTL=target/release/syctl
[ -x "$SYCTL" ] || { echo "build first: cargo build --release --bins"; exit 1; }
command -v trafgen >/dev/null || { echo "trafgen missing: scripts/setup"; exit 1; }
SBDIR=/run/switchyard-e2e
RESULTS=$(mktemp)
# shellcheck source=benches/lib.sh
. benches/lib.sh
OVSDIR=/run/switchyard-e2e-ovs

cleanup() {
  ip netns del e2e-a 2>/dev/null || true
  ip netns del e2e-b 2>/dev/null || true
  ip link del e2e-br 2>/dev/null || true
  ip link del e2e-ha 2>/dev/null || true
  ip link del e2e-hb 2>/dev/null || true
  "$SYCTL" sandbox down --dir "$SBDIR" --prefix e2e >/dev/null 2>&1 || true
  ovs_down "$OVSDIR"
}
trap cleanup EXIT
cleanup

ns_pair_veth() { # direct veth pair between two namespaces
  ip netns add e2e-a; ip netns add e2e-b
  ip link add eth0 netns e2e-a type veth peer name eth0 netns e2e-b
  setup_pod e2e-a 0a:00:00:00:00:01 10.99.0.1
  setup_pod e2e-b 0a:00:00:00:00:02 10.99.0.2
}
setup_pod() { # ns mac ip
  ip -n "$1" link set lo up
  ip -n "$1" link set eth0 address "$2"
  ip -n "$1" addr add "$3/24" dev eth0
  ip -n "$1" link set eth0 up
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  # Same pod setting in every setup: receive processing on core 0 (the switch
  # under test, where it has a thread, runs on core 1). The sandbox does the same.
  ip netns exec "$1" sh -c 'echo 1 > /sys/class/net/eth0/queues/rx-0/rps_cpus'
}
ns_pair_host() { # two namespaces, each with eth0 <-> e2e-h{a,b} in the root namespace
  ip netns add e2e-a; ip netns add e2e-b
  ip link add e2e-ha type veth peer name eth0 netns e2e-a
  ip link add e2e-hb type veth peer name eth0 netns e2e-b
  setup_pod e2e-a 0a:00:00:00:00:01 10.99.0.1
  setup_pod e2e-b 0a:00:00:00:00:02 10.99.0.2
  ip link set e2e-ha up; ip link set e2e-hb up
}
xdp_attach() { # IFACE -> how its XDP program is attached (xdpgeneric, xdp = native, xdpoffload)
  ip -o link show dev "$1" | grep -o 'xdp[a-z]*' | head -1 || echo none
}
pods_tx_off() { for n in e2e-a e2e-b; do ip netns exec $n ethtool -K eth0 tx off >/dev/null; done; }

pps() { # src-ns dst-ns src-mac dst-mac -> "delivered offered"
  local cfg; cfg=$(l2_frame_conf "$3" "$4")
  trafgen_pps "$1" "$2" "$cfg"
  rm -f "$cfg"
}

measure() { # name srcns dstns srcmac dstmac srcip dstip
  local g p
  g=$(tcp_gbps "$3" "$7" "$2")
  p=$(pps "$2" "$3" "$4" "$5" "$6" "$7")
  echo "$1 $g $p" | tee -a "$RESULTS"
}

run_veth()       { ns_pair_veth; measure veth e2e-a e2e-b 0a:00:00:00:00:01 0a:00:00:00:00:02 10.99.0.1 10.99.0.2; cleanup; }
run_bridge()     { ns_pair_host; ip link add e2e-br type bridge; ip link set e2e-br up
                   ip link set e2e-ha master e2e-br; ip link set e2e-hb master e2e-br
                   [ "$1" = txoff ] && pods_tx_off
                   measure "bridge-$1" e2e-a e2e-b 0a:00:00:00:00:01 0a:00:00:00:00:02 10.99.0.1 10.99.0.2; cleanup; }
run_switchyard() { # MODE [NAME SANDBOX-OPTION...]: MODE auto (generic XDP on veth) or native;
                   # NAME and options for the extra rows (several PMDs, multi-queue pods)
                   local xmode=$1 name=${2:-} mode; shift; [ $# -gt 0 ] && shift
                   local opts=(--pmd-core 1); [ $# -gt 0 ] && opts=("$@")
                   SWITCHYARD_XDP_MODE=$xmode "$SYCTL" sandbox up --pods 2 --dir "$SBDIR" --prefix e2e --port-base 18641 "${opts[@]}" >/dev/null
                   mode=$("$SYCTL" vswitch port-list --vswitchd "$SBDIR/vswitchd.sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["mode"])')
                   [ -z "$name" ] && { name=switchyard; [ "$xmode" = native ] && name=switchyard-native; }
                   echo "# $name: XDP mode $mode; $(xdp_attach "$(python3 -c "import json; print(json.load(open('$SBDIR/state.json'))['pods'][0]['host_iface'])")") (the kernel's view: ip link)" | tee -a "$RESULTS"
                   # shellcheck disable=SC2046
                   measure $name $(python3 -c "import json; p=json.load(open('$SBDIR/state.json'))['pods']; print(p[0]['netns'], p[1]['netns'], p[0]['mac'], p[1]['mac'], p[0]['ip'], p[1]['ip'])")
                   "$SYCTL" vswitch pmd-stats --vswitchd "$SBDIR/vswitchd.sock" | sed 's/^/    /'
                   cleanup; }

run_ovs() { # MODE: best-effort (OVS's default: native on veth) or generic
  command -v ovs-vswitchd >/dev/null || { echo "ovs-afxdp n/a n/a n/a (openvswitch-switch not installed)"; return; }
  local name=ovs-afxdp
  [ "$1" = generic ] && name=ovs-afxdp-generic
  ns_pair_host; pods_tx_off
  ovs_up "$OVSDIR" e2e-ha e2e-hb afxdp "$1"
  for _ in $(seq 100); do ip netns exec e2e-a ping -c1 -W1 10.99.0.2 >/dev/null 2>&1 && break; done
  echo "# $name: XDP mode $(xdp_attach e2e-ha) (the kernel's view: ip link)" | tee -a "$RESULTS"
  measure $name e2e-a e2e-b 0a:00:00:00:00:01 0a:00:00:00:00:02 10.99.0.1 10.99.0.2
  cleanup
}

echo "setup tcp_gbps pps_delivered pps_offered   (DUR=${DUR}s, RUNS=$RUNS)"
for r in $(seq "$RUNS"); do
  run_veth; run_bridge on; run_bridge txoff
  run_switchyard auto; run_switchyard native; run_ovs best-effort; run_ovs generic
  # Two PMDs on this machine's two cores (shared with the pods), with
  # single-queue pod veths (every frame crosses the hand-off ring) and with
  # two queues per veth (each PMD polls one queue of every port).
  run_switchyard auto switchyard-2pmd --pmd-cores 0,1
  run_switchyard auto switchyard-2pmd-2q --pmd-cores 0,1 --queues 2
done

report "$RESULTS" bridge-txoff bridge-on ovs-afxdp ovs-afxdp-generic veth
# The same XDP mode on both sides: generic against generic, native against native.
SY=switchyard-native report "$RESULTS" ovs-afxdp | sed -n '/^ratios:/,$p' | sed 's/^switchyard /switchyard-native /'
grep '^# ' "$RESULTS" | sort -u
rm -f "$RESULTS"
