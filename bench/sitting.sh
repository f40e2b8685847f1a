#!/bin/sh
# One measuring sitting (issue 6): staticnet's criterion cases with 1 and 2 threads,
# then right after them the Rust peers (dfdx, candle, burn-ndarray: bench/peers), then the
# Python peers (JAX jit, TensorFlow tf.function + the sgemm roofline), then staticnet's
# reference cases once more (staticnet-after.txt: the machine drifts over a sitting, and a
# ratio is only worth something if both passes agree) and the 2-thread speed-up with
# alternating windows (scaling.txt), and three one-thread cases against their best Rust peer in
# alternating rounds on the same CPU (head_to_head.txt), into $OUT (default
# /tmp/staticnet-sitting). `python3 bench/ratios.py $OUT` prints the ratio tables.
# Run from the repository root. The Python venv: tools/.venv (jax, numpy, threadpoolctl, tensorflow-cpu).
# The Rust peers are built first (burn takes minutes on a cold target directory), one framework
# at a time, so a framework that fails to build does not stop the others or the sitting
# (build logs: $OUT/peers_rust_build.log; `peers` reports a missing binary as a failed row).
set -eu
OUT=${OUT:-/tmp/staticnet-sitting}
mkdir -p "$OUT"
PEERS_BIN=bench/peers/target/release
: > "$OUT/peers_rust_build.log"
for f in dfdx candle burn; do
  rm -f "$PEERS_BIN/peer-$f"
  (cd bench/peers && cargo build --release --locked --features $f --bin peer-$f) >> "$OUT/peers_rust_build.log" 2>&1 \
    || echo "bench/peers: peer-$f failed to build (see $OUT/peers_rust_build.log)" | tee -a "$OUT/peers_rust_build.log"
done
(cd bench/peers && cargo build --release --locked --bin peers) >> "$OUT/peers_rust_build.log" 2>&1
CASES='tiny_train_b32/|mlp_train_b128/|cnn_train_b64/|tiny_infer_b1/|mlp_infer_b1/|mlp_infer_b128/|mlp_train_b1/|mlp_train_b32/|mlp_train_b512/|mlp_infer_b32/|mlp_infer_b512/|cnn_infer_b64/'
for b in mlp cnn; do
  STATICNET_BENCH_THREADS=1,2 cargo bench --bench $b -- --warm-up-time 1 --measurement-time 3 --noplot "$CASES" 2>&1 \
    | grep -E '^(train|infer)/|time:' | grep -v change >> "$OUT/staticnet.txt"
done
"$PEERS_BIN/peers" --threads 1,2 \
  --out-json "$OUT/peers_rust.json" --out-md "$OUT/peers_rust.md" > "$OUT/peers_rust.log" 2>&1 \
  || echo "bench/peers: peers failed (see $OUT/peers_rust.log)"
tools/.venv/bin/python ../shared/bench/bench_peers.py --only roofline,jax-jit,tf-function \
  --out-json "$OUT/peers.json" --out-md "$OUT/peers.md" > "$OUT/peers.log" 2>&1
REFERENCE='tiny_train_b32/|mlp_train_b128/|cnn_train_b64/|tiny_infer_b1/|mlp_infer_b1/|mlp_infer_b128/'
for b in mlp cnn; do
  STATICNET_BENCH_THREADS=1,2 cargo bench --bench $b -- --warm-up-time 1 --measurement-time 3 --noplot "$REFERENCE" 2>&1 \
    | grep -E '^(train|infer)/|time:' | grep -v change >> "$OUT/staticnet-after.txt"
done
# 2 threads vs 1 with alternating windows, so the drift cancels out (benches/scaling.rs).
cargo bench --bench scaling 2>&1 | grep -E '^(mlp|cnn)_' > "$OUT/scaling.txt"
# One thread against the best Rust peer in alternating rounds on the same CPU (bench/head_to_head.py).
for c in "mlp_infer_b128 candle" "mlp_infer_b1 candle" "tiny_train_b32 dfdx"; do
  python3 bench/head_to_head.py $c --rounds 8 >> "$OUT/head_to_head.txt" 2>&1 || echo "head_to_head $c failed" >> "$OUT/head_to_head.txt"
done
uptime >> "$OUT/staticnet.txt"
