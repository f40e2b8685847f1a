#!/usr/bin/env bash
# Runs every fuzz target for $1 seconds (default 600), one after the other, one job each,
# new inputs into fuzz/work/<target> (ignored by git), the committed seeds read from
# fuzz/corpus/<target>. Logs: fuzz/work/<target>.log; exit codes: fuzz/work/summary.txt.
# Stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags (see README.md).
set -u
cd "$(dirname "$0")/.."
secs=${1:-600}
for t in ${TARGETS:-idx weights checkpoint png dsl}; do
  mkdir -p fuzz/work/$t
  RUSTC_BOOTSTRAP=1 cargo fuzz run $t fuzz/work/$t fuzz/corpus/$t -- \
    -max_total_time=$secs -timeout=10 -print_final_stats=1 > fuzz/work/$t.log 2>&1
  echo "$t exit $?" >> fuzz/work/summary.txt
done
