#!/usr/bin/env bash
# vswitchd's footprint: CPU with no traffic under the default (adaptive) idle
# policy, and resident memory less UMEM, with N ports (pods) bound.
# Usage: benches/footprint.sh [PODS] [SECONDS]   (root; cargo build --release --bins)
set -euo pipefail
cd "$(dirname "$0")/.."
PODS=${1:-100}
SECS=${2:-10}
SYCTL=target/release/syctl
DIR=/run/switchyard-footprint
trap '"$SYCTL" sandbox down --dir "$DIR" --prefix fp >/dev/null 2>&1 || true' EXIT
t0=$(date +%s.%N)
"$SYCTL" sandbox up --pods "$PODS" --dir "$DIR" --prefix fp --port-base 18741 >/dev/null
t1=$(date +%s.%N)
pid=$(python3 -c "import json; print(json.load(open('$DIR/state.json'))['vswitchd']['pid'])")
frames=4096   # vswitchd's default --umem-frames, per interface queue
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu); sleep "$SECS"; c1=$(cpu)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
umem_kb=$(( PODS * frames * 2 ))
python3 - "$PODS" "$SECS" "$c0" "$c1" "$tick" "$rss_kb" "$umem_kb" "$t0" "$t1" <<'PY'
import sys
pods, secs, c0, c1, tick, rss, umem, t0, t1 = sys.argv[1:]
pods, secs, tick = int(pods), float(secs), int(tick)
cpu = (int(c1) - int(c0)) / tick / secs * 100
rss, umem = int(rss) / 1024, int(umem) / 1024
print(f"ports: {pods}  (sandbox up took {float(t1) - float(t0):.1f}s)")
print(f"idle CPU of vswitchd over {secs:.0f}s: {cpu:.2f}% of one core (adaptive idle policy)")
print(f"resident memory: {rss:.1f} MiB, of which UMEM {umem:.1f} MiB ({pods} x 4096 frames x 2 KiB); less UMEM: {rss - umem:.1f} MiB")
PY
