#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/) for at least RUNS executions each and
# prints, per target, the executions done, the coverage libFuzzer reports and
# the time taken; then minimizes each corpus back into fuzz/corpus/<target>.
#
#   benches/fuzz.sh [RUNS] [TARGET...]    default 10000000, every target
#   benches/fuzz.sh --seed                write the seed corpora only
#
# Needs the nightly toolchain (installed) and cargo-fuzz (installed from
# crates.io on first use). A crash stops that target and leaves the input in
# fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/ with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--seed" ]; then
  cargo test --release -p switchyard-tests --test fuzz_corpus -- --ignored write_seed_corpora
  exit 0
fi
RUNS=${1:-10000000}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(frames geneve conntrack nb dns dhcp)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
printf '%-10s %12s %8s %8s %8s  %s\n' target executions cov ft seconds result
for t in "${TARGETS[@]}"; do
  log=$(mktemp)
  new=fuzz/corpus-new/$t
  rm -rf "$new"; mkdir -p "$new"
  start=$(date +%s)
  # -s none: the targets are safe Rust (panics are what we look for; the
  # datapath's unsafe code, AF_XDP, is not on these paths), so no sanitizer.
  if cargo +nightly fuzz run -s none --fuzz-dir fuzz "$t" "$new" "fuzz/corpus/$t" -- \
      -runs="$RUNS" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see fuzz/artifacts/$t, log $log)"
  fi
  secs=$(( $(date +%s) - start ))
  done_line=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -1)
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  cov=$(echo "$done_line" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || echo "?")
  ft=$(echo "$done_line" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+' || echo "?")
  printf '%-10s %12s %8s %8s %8s  %s\n' "$t" "$execs" "$cov" "$ft" "$secs" "$result"
  # Keep a small corpus: merge what was found into a minimized set.
  min=$(mktemp -d)
  cargo +nightly fuzz run -s none --fuzz-dir fuzz "$t" "$min" "fuzz/corpus/$t" "$new" -- -merge=1 >/dev/null 2>&1 || true
  if [ -n "$(ls -A "$min")" ]; then
    rm -rf "fuzz/corpus/$t"; mv "$min" "fuzz/corpus/$t"
  fi
  rm -rf "$new"
  [ "$result" = ok ] && rm -f "$log"
done
