#!/bin/sh
# Cold and incremental release builds (issue 6, "compile time is speed too").
# Run from the repository root. Prints wall-clock seconds for:
#   1. the mnist_cnn example, cold (its own empty target directory) and after `touch`;
#   2. bench/compile (16 conv + 4 dense layers), cold and after `touch`.
set -eu
root=$(pwd)
t() { start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N); echo "$end - $start" | bc; }
tmp=${TMPDIR:-/tmp}/staticnet-compile-times
rm -rf "$tmp"; mkdir -p "$tmp"
echo "mnist_cnn cold:        $(CARGO_TARGET_DIR=$tmp/ex t cargo build --release --example mnist_cnn) s"
touch examples/mnist_cnn.rs
echo "mnist_cnn incremental: $(CARGO_TARGET_DIR=$tmp/ex t cargo build --release --example mnist_cnn) s"
cd bench/compile
echo "deep16 cold:           $(CARGO_TARGET_DIR=$tmp/deep t cargo build --release) s"
touch src/main.rs
echo "deep16 incremental:    $(CARGO_TARGET_DIR=$tmp/deep t cargo build --release) s"
CARGO_TARGET_DIR=$tmp/deep cargo run --release -q
cd "$root"
