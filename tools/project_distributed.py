#!/usr/bin/env python3
"""The projection of DISTRIBUTED.md: data-parallel step time on p ranks from the ring all-reduce cost model.

Inputs are measured on this machine (one thread per rank; see DISTRIBUTED.md) and passed on the command line:
  python3 tools/project_distributed.py MLP_US_PER_SAMPLE CNN_US_PER_SAMPLE [--backward 0.65]   (DISTRIBUTED.md: 15.5 181)
No dependencies; prints the Markdown tables DISTRIBUTED.md holds.

Model, per optimizer step with global batch G on p ranks (one rank per node, each link of bandwidth B):
  compute  = c * G / p + u                    (c: seconds per sample forward+backward; u: optimizer step)
  ring     = 2 (p-1)/p * S / B + 2 (p-1) * a   (S: gradient bytes; a: latency per message)
  flag     = 2 ceil(log2 p) * a                (the per-step status and fingerprint, 24 bytes)
  step     = compute + ring + flag             (what staticnet does: all-reduce after backward)
  overlap  = compute + exposed + flag          (what fit_distributed does with overlap: DDP's bucket plan, a first
                                               bucket of 1 MiB, then at most 25 MiB each, from the last parameters
                                               down; the gradients become ready at an even rate over backward
                                               (f c G/p, f: backward's share of the compute), a bucket's ring starts
                                               when its last gradient is ready and the link is free, each bucket
                                               pays the ring's latency term; exposed = the time from the end of
                                               backward until the last bucket is summed. A model within the
                                               first bucket (the MLP and CNN here) gains nothing. It assumes the
                                               transfers progress while the core computes: a NIC or an MPI with
                                               asynchronous progress; Open MPI over shared memory or TCP moves
                                               data only inside MPI calls, which fit_distributed makes once per layer)
  rabenseifner = 2 (p-1)/p * S / B + 2 log2(p) * a   (reduce-scatter + all-gather by recursive halving and
                                               doubling, which MPI libraries pick for large messages at many ranks:
                                               the same bandwidth term, logarithmic latency)
  speedup  = (c G + u) / step ; efficiency = speedup / p
  break-even global batch G*: p ranks are no faster than one process below it:
           c G* + u = c G*/p + u + ring + flag  =>  G* = (ring + flag) / (c (1 - 1/p))
"""
import math
import sys

LINKS = {"10 Gbit/s": (10e9 / 8, 25e-6), "100 Gbit/s": (100e9 / 8, 3e-6)}  # bytes/s, latency per message
RANKS = [8, 64, 512]


def ring(p, size, bandwidth, latency):
    return 2 * (p - 1) / p * size / bandwidth + 2 * (p - 1) * latency


def flag(p, latency):
    return 2 * math.ceil(math.log2(p)) * latency


FIRST_BUCKET, BUCKET_CAP = 1 << 20, 25 << 20


def bucket_sizes(size):
    """DDP's default buckets (and fit_distributed's), in the order they are sent."""
    sizes, left, cap = [], size, FIRST_BUCKET
    while left > 0:
        sizes.append(min(cap, left))
        left -= sizes[-1]
        cap = BUCKET_CAP
    return sizes


def exposed_overlap(p, size, bandwidth, latency, backward):
    """Communication left after a backward pass of `backward` seconds, buckets started as they become ready."""
    done, link_free = 0, 0.0
    for b in bucket_sizes(size):
        done += b
        ready = backward * done / size
        link_free = max(ready, link_free) + ring(p, b, bandwidth, latency)
    return link_free - backward


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    backward = 0.65
    if "--backward" in sys.argv:
        backward = float(sys.argv[sys.argv.index("--backward") + 1])
    mlp_c, cnn_c = (float(x) * 1e-6 for x in args[:2])
    models = [
        ("MLP (235,146 parameters)", mlp_c, 940_584),
        ("CNN (153,738 parameters)", cnn_c, 615_208),
        ("100x MLP (23.5 M parameters)", mlp_c * 100, 94_058_400),
    ]
    print("| model | link | ranks | ring all-reduce | step at G = 128/rank | efficiency | with overlap | "
          "break-even G* | Rabenseifner all-reduce, efficiency |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, c, size in models:
        for link, (bandwidth, latency) in LINKS.items():
            for p in RANKS:
                comm = ring(p, size, bandwidth, latency) + flag(p, latency)
                per_rank = 128
                compute = c * per_rank
                step = compute + comm
                exposed = exposed_overlap(p, size, bandwidth, latency, backward * compute)
                step_overlap = compute + exposed + flag(p, latency)
                g_star = comm / (c * (1 - 1 / p))
                rab = 2 * (p - 1) / p * size / bandwidth + 2 * math.log2(p) * latency + flag(p, latency)
                print(f"| {name} | {link} | {p} | {comm * 1e3:.2f} ms | {step * 1e3:.2f} ms | "
                      f"{compute / step:.0%} | {compute / step_overlap:.0%} | {g_star:,.0f} | "
                      f"{rab * 1e3:.2f} ms, {compute / (compute + rab):.0%} |")


if __name__ == "__main__":
    main()
