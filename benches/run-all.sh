#!/usr/bin/env bash
# Reruns every figure of BENCHMARKS.md in one go and prints its tables: the
# criterion benches (in-memory datapath, services, ACLs, conntrack, northd),
# instructions per packet (callgrind), every end-to-end script against its
# kernel/OVS baseline in the same run, lb-add latency, footprint, and with
# --fuzz the fuzzing campaign. Each section prints the command behind it; the
# run starts with the commit and the machine, so a table can be traced.
#
#   benches/run-all.sh [--quick] [--fuzz] [--only SECTION[,SECTION...]]
#
# Full: the parameters BENCHMARKS.md quotes (about 40 minutes here, 2 vCPU;
# --fuzz adds about an hour). --quick: short runs of everything (about 12
# minutes) for a reviewer who wants the ratios, not publication figures.
# Sections: criterion ipp e2e mtu routed overlay service acl dns lb-latency footprint fuzz.
# Root; nothing else running (the e2e scripts pin to cores 0 and 1). Logs
# of every section go to target/bench-results/<commit>-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0 FUZZ=0 ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --fuzz) FUZZ=1 ;;
    --only) ONLY=",$2,"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run-all.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "run-all.sh: the end-to-end scripts need root" >&2; exit 1; }
want() { if [ -n "$ONLY" ]; then [[ "$ONLY" == *",$1,"* ]]; elif [ "$1" = fuzz ]; then [ "$FUZZ" = 1 ]; else true; fi; }

commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!BENCHMARKS.md' || echo "+dirty")
OUT=target/bench-results/$commit-$(date +%Y%m%d-%H%M)
mkdir -p "$OUT"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo "# benches/run-all.sh$( [ $QUICK = 1 ] && echo ' --quick')"
echo "commit $commit, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) vCPU $cpu, $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)"
echo "logs: $OUT"

if [ $QUICK = 1 ]; then
  CRIT=(--warm-up-time 1 --measurement-time 2 --sample-size 10)
  E2E=(3 1) SVC=(3 1 1000) LBL=(10000 3) FOOT=(20 5) IPP=200 FUZZ_RUNS=10000
else
  CRIT=()
  E2E=(8 3) SVC=(5 3 10000) LBL=(100000 7) FOOT=(100 10) IPP=2000 FUZZ_RUNS=10000000
fi

section() { # NAME COMMAND...: runs it, logs it, prints its tables
  local name=$1; shift
  echo; echo "## $name: \`$*\`"
  local t0=$SECONDS
  if "$@" >"$OUT/$name.log" 2>&1; then
    sed -n '/^medians:/,$p; /^setup /p; /^median /p; /^switchyard \/ /p; /^scenario /,$p; /^| /p; /^lb-add to first/,$p; /^ports: /,$p' "$OUT/$name.log" | awk '!seen[$0]++'
  else
    echo "FAILED (see $OUT/$name.log):"; tail -5 "$OUT/$name.log"
  fi
  echo "($((SECONDS - t0)) s)"
}

# The peers measured beside Switchyard (Debian packages; idempotent).
command -v ovs-vswitchd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q openvswitch-switch >/dev/null
cargo build --release --workspace --bins -q

if want criterion; then
  echo; echo "## criterion: \`cargo bench -p switchyard-benches --benches -- ${CRIT[*]}\`"
  rm -rf target/criterion
  t0=$SECONDS
  cargo bench -q -p switchyard-benches --benches -- "${CRIT[@]}" >"$OUT/criterion.log" 2>&1 || { echo "FAILED (see $OUT/criterion.log)"; tail -5 "$OUT/criterion.log"; }
  python3 benches/criterion-table.py target/criterion
  echo "($((SECONDS - t0)) s)"
fi
want ipp && section ipp benches/ipp.sh "" "$IPP"
want e2e && section e2e benches/e2e.sh "${E2E[@]}"
want mtu && section mtu benches/e2e-mtu.sh "${E2E[0]}" "${E2E[1]}"
want routed && section routed benches/e2e-routed.sh "${E2E[0]}" "${E2E[1]}"
want overlay && section overlay benches/e2e-overlay.sh "${E2E[0]}" "${E2E[1]}"
want service && section service benches/e2e-service.sh "${SVC[@]}"
want acl && section acl benches/e2e-acl.sh "${E2E[0]}" "${E2E[1]}"
want dns && section dns benches/e2e-dns.sh "${E2E[0]}" "${E2E[1]}"
want lb-latency && section lb-latency benches/lb-latency.sh "${LBL[@]}"
want footprint && section footprint benches/footprint.sh "${FOOT[@]}"
want fuzz && section fuzz benches/fuzz.sh "$FUZZ_RUNS"
echo; echo "done: $OUT"
