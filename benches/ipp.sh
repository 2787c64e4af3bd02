#!/usr/bin/env bash
# Instructions per packet of each datapath scenario, counted by callgrind
# (noise-free: the same on a busy or a quiet machine), for this checkout or,
# with BASE, as an A/B against another commit built in a temporary worktree.
#
#   benches/ipp.sh [BASE_COMMIT] [BATCHES]
#
# The driver is benches/src/bin/sy-ipp.rs; at BASE it is copied in, so the
# base needs only the bench fixtures it uses.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:-}
BATCHES=${2:-2000}
SCENARIOS=(l2 routed service geneve-encap geneve-decap slow-l2 slow-routed)
command -v valgrind >/dev/null || { echo "valgrind is required"; exit 1; }

count() { # DIR SCENARIO -> instructions per packet
  local out; out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect='*measured*' \
    "$1/target/release/sy-ipp" "$2" "$BATCHES" >/dev/null 2>&1
  local ir; ir=$(grep -E '^summary:' "$out" | awk '{print $2}')
  rm -f "$out"
  awk -v ir="$ir" -v n="$((BATCHES * 32))" 'BEGIN { printf "%.1f", ir / n }'
}

build() { (cd "$1" && cargo build --release -q -p switchyard-benches --bin sy-ipp); }

build .
declare -A base
if [ -n "$BASE" ]; then
  wt=$(mktemp -d)
  trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
  git worktree add -q --detach "$wt" "$BASE"
  cp benches/src/bin/sy-ipp.rs "$wt/benches/src/bin/"
  CARGO_TARGET_DIR="$wt/target" build "$wt"
  for s in "${SCENARIOS[@]}"; do base[$s]=$(count "$wt" "$s"); done
fi
printf '%-14s %12s' scenario "instr/pkt"
[ -n "$BASE" ] && printf ' %12s %8s' "base" "ratio"
echo
for s in "${SCENARIOS[@]}"; do
  now=$(count . "$s")
  printf '%-14s %12s' "$s" "$now"
  [ -n "$BASE" ] && printf ' %12s %8s' "${base[$s]}" "$(awk -v a="$now" -v b="${base[$s]}" 'BEGIN { printf "%.3f", a / b }')"
  echo
done
