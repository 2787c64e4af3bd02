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
# UMEM is a shared mapping (Shmem); heap is Anonymous; the binary, libraries and
# the AF_XDP rings (mmapped from the sockets) are file-backed.
kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/smaps_rollup"; }
python3 - "$PODS" "$SECS" "$c0" "$c1" "$tick" "$(kb Rss)" "$(kb Anonymous)" "$(kb Pss_File)" "$(kb Pss_Shmem)" "$t0" "$t1" "$frames" <<'PY'
import sys
pods, secs, c0, c1, tick, rss, anon, file_, shmem, t0, t1, frames = sys.argv[1:]
pods, secs, tick = int(pods), float(secs), int(tick)
cpu = (int(c1) - int(c0)) / tick / secs * 100
mib = lambda k: int(k) / 1024
print(f"ports: {pods}  (sandbox up took {float(t1) - float(t0):.1f}s)")
print(f"idle CPU of vswitchd over {secs:.0f}s: {cpu:.2f}% of one core (adaptive idle policy)")
print(f"resident: {mib(rss):.1f} MiB = UMEM {mib(shmem):.1f} MiB ({pods} ports x {frames} frames x 2 KiB)"
      f" + heap {mib(anon):.1f} MiB + file-backed {mib(file_):.1f} MiB (binary, libraries, AF_XDP rings)")
print(f"resident less UMEM: {mib(anon) + mib(file_):.1f} MiB")
PY
