#!/usr/bin/env python3
"""staticnet against one Rust peer on one case, in alternating rounds on the same CPUs.

    python3 bench/head_to_head.py mlp_infer_b128 candle [--threads 1] [--rounds 8]

Why: a sitting times staticnet and the peers minutes apart, and on a shared 2-vCPU host one
vCPU can run 25-30% slower than the other for minutes (bench/results/JOURNAL.md, amd9), so a ratio of two
medians taken apart can move by that much. Here each round times both, back to back, pinned
to the same CPUs (the peer binaries pin themselves to their first `threads` CPUs; staticnet's
criterion binary is started under `taskset` on the same ones), alternating which goes first;
the per-round ratios and their median are printed as one Markdown line.

staticnet: criterion's median (`target/criterion/<kind>/<case>/<n>t/new/estimates.json`) of a
short run of the bench binary; the peer: `peer-<framework> --only <case>` (bench/peers, built
first). Run from the repository root; standard library only."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PEERS = Path("bench/peers/target/release")


def bench_binary(bench):
    """The path of a criterion bench binary, built if needed."""
    out = subprocess.run(
        ["cargo", "bench", "--bench", bench, "--no-run"], capture_output=True, text=True, check=True
    )
    found = re.findall(r"Executable .*\((\S+)\)", out.stderr)
    if not found:
        sys.exit(f"head_to_head: no binary for bench {bench}:\n{out.stderr}")
    return found[-1]


def staticnet_us(binary, case, threads, cpus):
    """One short criterion run; criterion's median estimate in µs."""
    kind = "train" if "_train_" in case else "infer"
    bench_id = f"{kind}/{case}/{threads}t"
    env = dict(os.environ, STATICNET_BENCH_THREADS=str(threads))
    args = ["taskset", "-c", cpus, binary, "--bench", "--warm-up-time", "1"]
    args += ["--measurement-time", "2", "--noplot", "--exact", bench_id]
    subprocess.run(args, env=env, capture_output=True, check=True)
    estimates = Path("target/criterion") / kind / case / f"{threads}t" / "new" / "estimates.json"
    return json.loads(estimates.read_text())["median"]["point_estimate"] / 1e3


def peer_us(framework, case, threads):
    """One run of the peer's own harness (median of its repeats) in µs."""
    binary = (PEERS / f"peer-{framework}").resolve()
    if not binary.exists():
        sys.exit(f"head_to_head: {binary} is not built (see BENCHMARKS.md, Reproduce)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        args = [str(binary), "--only", case, "--threads", str(threads), "--repeats", "5"]
        args += ["--min-time", "0.4", "--out-json", str(out), "--out-md", str(Path(tmp) / "peer.md")]
        subprocess.run(args, capture_output=True, check=True, cwd=tmp)
        runs = json.loads(out.read_text())["runs"]
    [result] = [r for fw in runs.values() for r in fw[str(threads)]["results"] if r["case"] == case]
    return result["median_us"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("case")
    p.add_argument("framework", help="dfdx, candle or burn (the peer binary's suffix)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=8)
    o = p.parse_args()
    binary = bench_binary("cnn" if o.case.startswith("cnn") else "mlp")
    cpus = ",".join(str(c) for c in range(o.threads))
    ratios, ours, theirs = [], [], []
    for r in range(o.rounds):
        pair = {}
        for who in (["staticnet", "peer"] if r % 2 == 0 else ["peer", "staticnet"]):
            if who == "staticnet":
                pair[who] = staticnet_us(binary, o.case, o.threads, cpus)
            else:
                pair[who] = peer_us(o.framework, o.case, o.threads)
        ours.append(pair["staticnet"])
        theirs.append(pair["peer"])
        ratios.append(pair["staticnet"] / pair["peer"])
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    fmt = lambda v: f"{v:,.3g}" if v < 10 else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    print(
        f"| {o.case} | {o.threads} | {o.framework} | {statistics.median(ratios):.2f}× "
        f"({q[0]:.2f}–{q[2]:.2f}×) | {fmt(statistics.median(ours))} / {fmt(statistics.median(theirs))} µs "
        f"| {' '.join(f'{x:.2f}' for x in ratios)} |"
    )


if __name__ == "__main__":
    main()
