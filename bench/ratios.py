#!/usr/bin/env python3
"""The ratio table of one sitting (bench/sitting.sh's output directory): staticnet's
criterion medians against the best peer of the same sitting, per case and thread count.

    python3 bench/ratios.py /tmp/staticnet-sitting

Reads staticnet.txt (criterion lines) and the peers' peers_rust.md and peers.md
tables, and prints head_to_head.txt when the sitting has one; standard library only."""
import re
import sys
from pathlib import Path

CASES = ["tiny_train_b32", "mlp_train_b128", "cnn_train_b64", "tiny_infer_b1", "mlp_infer_b1", "mlp_infer_b128"]
UNIT = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}


def staticnet(path):
    """{(case, threads): median µs} from criterion's `time: [lo median hi]` lines."""
    times, name = {}, None
    for line in path.read_text().splitlines():
        m = re.match(r"^(train|infer)/(\w+)/(\d+)t", line)
        if m:
            name = (m.group(2), int(m.group(3)))
        t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if t and name:
            times[name] = float(t.group(1)) * UNIT[t.group(2)]
            name = None
    return times


def peers(*paths):
    """{(case, threads): [(median µs, framework)]} from the peers' markdown tables."""
    rows = {}
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) > 5 and cells[2] in CASES and cells[3].isdigit():
                median = float(cells[4].replace(",", ""))
                rows.setdefault((cells[2], int(cells[3])), []).append((median, cells[0]))
    return rows


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/staticnet-sitting")
    theirs = peers(out / "peers_rust.md", out / "peers.md")
    for name in ["staticnet.txt", "staticnet-after.txt"]:
        if (out / name).exists():
            print(f"\n{name} (before the peers)" if name == "staticnet.txt" else f"\n{name} (after the peers)")
            table(staticnet(out / name), theirs)
    if (out / "head_to_head.txt").exists():
        print("\nhead to head, alternating rounds on the same CPU (bench/head_to_head.py):")
        print("| case | threads | peer | ratio, median of rounds (quartiles) | medians staticnet / peer | per round |")
        print("|---|---|---|---|---|---|")
        print((out / "head_to_head.txt").read_text().strip())


def table(ours, theirs):
    print("| case | staticnet 1t / 2t (µs) | best peer 1t / 2t (µs) | ratio 1t / 2t |")
    print("|---|---|---|---|")
    for case in CASES:
        cells = []
        for t in (1, 2):
            best = min(theirs.get((case, t), [(float("nan"), "-")]))
            cells.append((ours.get((case, t), float("nan")), best))
        fmt = lambda v: f"{v:,.3g}" if v < 10 else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
        us = " / ".join(fmt(o) for o, _ in cells)
        peer = " / ".join(f"{name} {fmt(v)}" for _, (v, name) in cells)
        ratio = " / ".join(f"{o / v:.2f}×" for o, (v, _) in cells)
        print(f"| {case} | {us} | {peer} | {ratio} |")
    one, two = ours.get(("mlp_train_b128", 1)), ours.get(("mlp_train_b128", 2))
    if one and two:
        print(f"\nmlp_train_b128, 2 threads vs 1: {one / two:.2f}×")


if __name__ == "__main__":
    main()
