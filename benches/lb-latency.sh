#!/usr/bin/env bash
# The time from `syctl lb-add` (a new service: one load balancer with one VIP,
# attached to the client's switch, in one transaction) to the first TCP
# connection through it, with N services already present (default 100,000,
# each its own load balancer, as Kubernetes Services are).
# Usage: benches/lb-latency.sh [SERVICES] [TRIALS]   (root; build first)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
TRIALS=${2:-5}
SYCTL=target/release/syctl
RATE=target/release/sy-connrate
[ -x "$SYCTL" ] && [ -x "$RATE" ] || { echo "build first: cargo build --release --bins"; exit 1; }
SBDIR=/run/switchyard-lb-latency
VIPS=$(mktemp)
OUT=$(mktemp)
cleanup() {
  pkill -f "$RATE serve" 2>/dev/null || true
  "$SYCTL" sandbox down --dir "$SBDIR" --prefix lbl >/dev/null 2>&1 || true
}
trap 'cleanup; rm -f "$VIPS" "$OUT"' EXIT
cleanup
RUST_LOG=info,switchyard_vswitch=debug "$SYCTL" sandbox up --pods 2 --subnets 2 --dir "$SBDIR" --prefix lbl --port-base 18781 >/dev/null
read -r C B BIP < <(python3 -c "
import json; s=json.load(open('$SBDIR/state.json')); p=s['pods']
print(p[0]['netns'], p[1]['netns'], p[1]['ip'])")
NB=(--nb http://127.0.0.1:18781)
python3 -c "
import sys
for k in range(int(sys.argv[1])):
    print('svc%d 10.%d.%d.%d:80 %s:8080' % (k, 100 + (k >> 16), (k >> 8) & 255, k & 255, sys.argv[2]))" "$N" "$BIP" > "$VIPS"
t0=$(date +%s.%N)
"$SYCTL" "${NB[@]}" lb-import "$VIPS" --ls ls0 >/dev/null
t1=$(date +%s.%N)
ip netns exec "$B" "$RATE" serve 0.0.0.0:8080 >/dev/null 2>&1 &
ip netns exec "$C" "$RATE" first "10.100.0.1:80" 60 >/dev/null
t2=$(date +%s.%N)
python3 -c "print('%d services imported in one transaction: %.2f s; first connection through them after %.2f s' % ($N, $t1 - $t0, $t2 - $t0))"
for i in $(seq "$TRIALS"); do
  # The new service and its attachment in one transaction (lb-import of one
  # line with --ls), then connect until it answers.
  echo "svc-new$i 10.96.201.$i:80 $BIP:8080" > "$VIPS"
  a=$(date +%s.%N)
  "$SYCTL" "${NB[@]}" lb-import "$VIPS" --ls ls0 >/dev/null
  b=$(ip netns exec "$C" "$RATE" first "10.96.201.$i:80" 10)
  python3 -c "print('%.1f' % (($b - $a) * 1000))" | tee -a "$OUT"
done
python3 - "$OUT" "$N" <<'PY'
import sys, statistics
v = [float(x) for x in open(sys.argv[1])]
print("lb-add to first connection with %s services: median %.1f ms (min %.1f, max %.1f, %d trials)" % (sys.argv[2], statistics.median(v), min(v), max(v), len(v)))
PY
grep 'NB transaction committed' "$SBDIR/northd.log" | tail -n "$TRIALS" | grep -o 'total_us=[0-9]*' | sed 's/^/  northd transaction /'
grep -o 'apply_us=[0-9]* publish_us=[0-9]*' "$SBDIR/vswitchd.log" | tail -n "$TRIALS" | sed 's/^/  vswitchd /'
