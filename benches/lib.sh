# Shared by the end-to-end benchmark scripts (sourced, not run).

# TCP Gbit/s: iperf3 server in $1 bound to $2, client in $3, for $DUR seconds.
tcp_gbps() {
  ip netns exec "$1" iperf3 -s -1 -B "$2" >/dev/null 2>&1 &
  local srv=$!
  for _ in $(seq 100); do ip netns exec "$1" ss -ltn | grep -q ':5201' && break; sleep 0.05; done
  ip netns exec "$3" iperf3 -c "$2" -t "$DUR" -J | python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
  wait $srv 2>/dev/null || true
}

# "delivered offered" packets/s: one trafgen process on core 0 in $1 sending the
# frames of config file $3 for $DUR seconds, counted at eth0 of $2 and of $1.
trafgen_pps() {
  local rx0 tx0 rx1 tx1
  rx0=$(ip netns exec "$2" cat /sys/class/net/eth0/statistics/rx_packets)
  tx0=$(ip netns exec "$1" cat /sys/class/net/eth0/statistics/tx_packets)
  # One generator process on core 0: the switch under test keeps core 1 (by
  # default trafgen forks a worker per CPU and would starve a userspace switch).
  ip netns exec "$1" taskset -c 0 timeout "$DUR" trafgen --cpus 1 --dev eth0 --conf "$3" --no-sock-mem -Q -q >/dev/null 2>&1 || true
  sleep 0.5
  rx1=$(ip netns exec "$2" cat /sys/class/net/eth0/statistics/rx_packets)
  tx1=$(ip netns exec "$1" cat /sys/class/net/eth0/statistics/tx_packets)
  echo "$(( (rx1 - rx0) / DUR )) $(( (tx1 - tx0) / DUR ))"
}

# A trafgen config of 60-byte frames (64 on the wire) from MAC $1 to MAC $2 with
# the local-experimental EtherType 0x88B5: every switch forwards them and the
# receiving kernel drops them on arrival, so its stack is not what is measured.
l2_frame_conf() {
  local cfg sm dm
  cfg=$(mktemp)
  sm=$(echo "$1" | sed 's/^/0x/; s/:/, 0x/g'); dm=$(echo "$2" | sed 's/^/0x/; s/:/, 0x/g')
  echo "{ $dm, $sm, 0x88, 0xb5, fill(0x00, 46) }" > "$cfg"
  echo "$cfg"
}

# Medians per setup of "name tcp pps offered" lines in $1, then the ratios of
# "switchyard" to each setup named after $1.
report() {
  local results=$1; shift
  python3 - "$results" "$@" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 4 or f[0] == "#" or f[1] == "n/a": continue
    rows.setdefault(f[0], []).append((float(f[1]), int(f[2]), int(f[3])))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
print("\nmedians:")
print("%-22s %8s %12s %12s" % ("setup", "TCP Gbps", "pps deliv.", "pps offered"))
for k, (g, p, o) in med.items():
    print("%-22s %8.2f %12d %12d" % (k, g, p, o))
import os
sy = med.get(os.environ.get("SY", "switchyard"))
if sy:
    print("\nratios:")
    for n in sys.argv[2:]:
        if n in med and med[n][0] > 0 and med[n][1] > 0:
            print("switchyard / %-20s TCP %.2fx  pps %.2fx" % (n, sy[0] / med[n][0], sy[1] / med[n][1]))
PY
}

# The kernel baseline of the service and ACL benchmarks: namespaces $1-c
# (client, 10.97.0.2) and $1-b (server, 10.97.1.2) on bridges br0/br1 of a
# host namespace $1-h that routes between them (10.97.0.1, 10.97.1.1); pod TX
# offload off, as in the Switchyard sandbox.
routed_pair() {
  ip netns add "$1-h"; ip netns add "$1-c"; ip netns add "$1-b"
  ip link add eth0 netns "$1-c" type veth peer name vc netns "$1-h"
  ip link add eth0 netns "$1-b" type veth peer name vb netns "$1-h"
  ip -n "$1-h" link add br0 type bridge; ip -n "$1-h" link add br1 type bridge
  ip -n "$1-h" link set vc master br0; ip -n "$1-h" link set vb master br1
  ip -n "$1-h" addr add 10.97.0.1/24 dev br0; ip -n "$1-h" addr add 10.97.1.1/24 dev br1
  for l in vc vb br0 br1 lo; do ip -n "$1-h" link set $l up; done
  ip netns exec "$1-h" sysctl -qw net.ipv4.ip_forward=1
  local ns ip gw
  while read -r ns ip gw; do
    ip -n "$ns" link set lo up; ip -n "$ns" addr add "$ip/24" dev eth0; ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$gw"
    ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null
  done <<< "$1-c 10.97.0.2 10.97.0.1
$1-b 10.97.1.2 10.97.1.1"
}

# Open vSwitch's userspace datapath in directory $1 (its own ovsdb-server
# and ovs-vswitchd, PMD on core 1), bridge e2e-ovs joining interfaces $2 and
# $3 as ports of type $4 (afxdp or system) with XDP mode $5 (afxdp only);
# with $6 = tso, userspace TSO is enabled before ovs-vswitchd starts.
# Returns 1 when openvswitch-switch is not installed. ovs_down $1 stops it.
ovs_up() {
  command -v ovs-vswitchd >/dev/null || return 1
  local dir=$1
  mkdir -p "$dir"
  ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server "$dir/conf.db" --remote=punix:"$dir/db.sock" --pidfile="$dir/ovsdb-server.pid" --detach --log-file="$dir/ovsdb.log" --unixctl="$dir/ovsdb.ctl" 2>/dev/null
  export OVS_RUNDIR=$dir OVS_DBDIR=$dir
  local V="ovs-vsctl --db=unix:$dir/db.sock"
  $V --no-wait init
  $V --no-wait set Open_vSwitch . other_config:pmd-cpu-mask=0x2
  [ "${6:-}" = tso ] && $V --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true
  ovs-vswitchd unix:"$dir/db.sock" --pidfile="$dir/ovs-vswitchd.pid" --detach --log-file="$dir/vswitchd.log" --unixctl="$dir/vswitchd.ctl" 2>/dev/null
  $V add-br e2e-ovs -- set bridge e2e-ovs datapath_type=netdev
  local p
  for p in "$2" "$3"; do
    if [ "$4" = afxdp ]; then
      $V add-port e2e-ovs "$p" -- set interface "$p" type=afxdp options:xdp-mode="$5"
    else
      $V add-port e2e-ovs "$p"
    fi
  done
}
ovs_down() {
  [ -f "$1/ovs-vswitchd.pid" ] || return 0
  kill "$(cat "$1/ovs-vswitchd.pid")" 2>/dev/null || true
  kill "$(cat "$1/ovsdb-server.pid")" 2>/dev/null || true
  local _
  for _ in $(seq 50); do kill -0 "$(cat "$1/ovs-vswitchd.pid")" 2>/dev/null || break; sleep 0.1; done
  rm -rf "$1"
}
