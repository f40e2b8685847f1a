#!/usr/bin/env bash
# The 1-vs-2-rank sitting of DISTRIBUTED.md: one epoch of the MLP and the CNN examples (40,000 samples: the
# bundled digits and their shifts, global batch 128), as a plain single process, as one MPI rank, and as two
# ranks of one thread each; then the all-reduce alone at the trainer's sizes. Rounds alternate the runs so
# that a change in the machine's load hits all of them. Usage: bench/distributed.sh [ROUNDS] > OUT
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
cargo build --release --features mpi --example mnist --example mnist_cnn >&2
cargo build --release --manifest-path mpi-tests/Cargo.toml --target-dir target >&2
mpi=(mpirun --allow-run-as-root --oversubscribe)
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
    for example in mnist mnist_cnn; do
        echo "## round $round, $example"
        echo "### one process, 1 thread"
        "target/release/examples/$example" --epochs 1 --threads 1 2>&1 | grep -E '^epoch|^test accuracy'
        echo "### 1 rank"
        "${mpi[@]}" -np 1 "target/release/examples/$example" --distributed --epochs 1 --threads 1 2>&1 \
            | grep -E '^epoch|^test accuracy|^rank 0:'
        echo "### 2 ranks, 1 thread each"
        "${mpi[@]}" -np 2 "target/release/examples/$example" --distributed --epochs 1 --threads 1 2>&1 \
            | grep -E '^epoch|^test accuracy|^rank'
        echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    done
    echo "## round $round, all-reduce alone (MLP and CNN gradient sizes in f32 values)"
    "${mpi[@]}" -np 2 target/release/mpi-check bench 235146 153802
done
