#!/bin/sh
# One measuring sitting (issue 6): staticnet's criterion cases with 1 and 2 threads,
# then the peers (JAX jit + the sgemm roofline) right after, into $OUT (default /tmp/staticnet-sitting).
# Run from the repository root. The JAX venv: tools/.venv (jax, numpy, threadpoolctl).
set -eu
OUT=${OUT:-/tmp/staticnet-sitting}
mkdir -p "$OUT"
CASES='tiny_train_b32/|mlp_train_b128/|cnn_train_b64/|tiny_infer_b1/|mlp_infer_b1/|mlp_infer_b128/|mlp_train_b1/|mlp_train_b32/|mlp_train_b512/|mlp_infer_b32/|mlp_infer_b512/|cnn_infer_b64/'
for b in mlp cnn; do
  STATICNET_BENCH_THREADS=1,2 cargo bench --bench $b -- --warm-up-time 1 --measurement-time 3 --noplot "$CASES" 2>&1 \
    | grep -E '^(train|infer)/|time:' | grep -v change >> "$OUT/staticnet.txt"
done
tools/.venv/bin/python ../shared/bench/bench_peers.py --only roofline,jax-jit \
  --out-json "$OUT/peers.json" --out-md "$OUT/peers.md" > "$OUT/peers.log" 2>&1
uptime >> "$OUT/staticnet.txt"
