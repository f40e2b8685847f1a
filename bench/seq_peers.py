#!/usr/bin/env python3
"""Peer timings of issue 19's sequence cases: PyTorch eager, torch.compile and JAX jit at ONE thread.

The cases (issue 19, "Speed"; the models are the ones `network!` declares there):

- `gpt_train_b32_t64`: one training step of the CharGpt (vocab 63, 64 tokens, embedding 63 -> 128 + a
  learned positional [64, 128] table, two pre-LN blocks: LayerNorm -> 4-head causal self-attention ->
  residual, LayerNorm -> Linear(128, 512) -> GELU (exact erf) -> Linear(512, 128) -> residual, a final
  LayerNorm and Linear(128, 63) at every step, no dropout): forward, mean cross-entropy over all 32·64
  steps, backward, AdamW (lr 1e-3, weight decay 0.01, betas 0.9/0.999, eps 1e-8) on a batch of 32 windows.
- `gpt_infer_b1_t64`: the CharGpt's forward pass on one window of 64 tokens (logits at every step).
- `lstm_train_b32_t64`: embedding 63 -> 64, LSTM(64 -> 256) (PyTorch's gates), Linear(256, 63) at every step,
  mean cross-entropy over every step, backward, plain SGD (lr 0.1); batch 32 windows of 64.
- `generate_tokens`: 200 tokens generated one at a time from a 64-character prompt, recomputing the whole
  64-token window for every new token (a plain implementation), sampling from the softmax of the last
  step's logits (temperature 1, no top-k); the figure is tokens per second. `generate_tokens_kv`
  (PyTorch eager only): the same model with a key/value cache, one token per call; learned absolute
  positions cannot slide a cache past 64 positions, so it fills one window (a 1-token prompt, 63 new
  tokens) and the figure is tokens per second over those 63.

Frameworks: `torch-eager` (nn.Embedding, nn.MultiheadAttention(batch_first, need_weights=False, causal),
nn.LayerNorm, nn.Linear, nn.LSTM; torch.optim.AdamW / SGD with their default implementations),
`torch-compile` (the shared script's recipe: `torch.compile(loss_fn, dynamic=False)` over forward + loss,
forward and backward compiled by inductor through AOTAutograd, `loss.backward()` eager, the optimizer
step wrapped in `torch.compile`; inference and generation call `torch.compile(model)`),
`jax-jit` (a plain jax.numpy implementation of the same models, the whole step in one `jax.jit` with
the parameters donated; AdamW written by hand with PyTorch's formula, since optax is not installed)
and `roofline` (numpy/OpenBLAS sgemm: 1024³ and the CharGpt's largest product, 2048x128 @ 128x512).

One thread: every worker is a fresh process pinned to one CPU (`--cpu`, default 0) with
sched_setaffinity before any framework is imported, `torch.set_num_threads(1)` and
`set_num_interop_threads(1)`, OMP/MKL/OPENBLAS_NUM_THREADS=1 and, for JAX,
`XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1` (jaxlib 0.10 is only
held to one core by the pinning; see ../shared/bench/bench_peers.py). Equivalent by hand:
`taskset -c 0 env OMP_NUM_THREADS=1 ... python ...`.

Timing (the shared script's method): the first call (tracing / compiling) is timed apart, then
`--warmup` calls, then `--repeats` repeats of N calls, N chosen so a repeat lasts >= `--min-time` s;
the figure is the median over the repeats of the mean time per call, with min, max and quartiles.
Every case records the load average before and after it and the share of the machine's CPUs used by
other processes during the timed repeats (/proc/stat minus the worker's own rusage). `--quiet-wait S`
waits up to S seconds for a quiet machine (< 5% foreign CPU) before each case and `--attempts N`
re-times a disturbed case; both default to "don't" (0 s, 1 attempt) because this machine is shared.

FLOPs (2 per multiply-add, products only; element-wise work, softmax, layer norm, gathers and the
optimizer are not counted; `flops_table()` computes them):
- CharGpt forward on N = B·T tokens, per block: in_proj 2·N·D·3D, scores Q·Kᵀ 2·B·H·T·T·dh and
  attention·V 2·B·H·T·T·dh (the full T x T, as every implementation here computes it), out_proj 2·N·D·D,
  the MLP 2·(2·N·D·4D); plus the head 2·N·D·V. A training step is 3x the forward (the backward of every
  product is two products of the same size: the input's gradient and the weight's, or both operands'
  for the two attention products). B=32, T=64: 1.778 GFLOP forward, 5.334 GFLOP per step; B=1: 55.6 MFLOP.
- LSTM forward: input products 2·N·F·4H, recurrent products 2·N·H·4H, head 2·N·H·V; step = 3x forward
  (4.225 GFLOP for B=32, T=64, F=64, H=256).
- generate_tokens: 55.6 MFLOP (a batch-1 forward of 64 steps) per token; with the cache per token at
  position t: 2·(per block: 3D·D + D·D + 2·4D·D) + 2·2·D·(t+1) per block + 2·D·V.

`--train-check STEPS` instead trains the PyTorch CharGpt (eager, one thread) on data/kjv/train.txt with
the issue's recipe (AdamW lr 1e-3, wd 0.01, batches of 32 random 64-character windows, next character
targets) and prints the training loss and the loss in nats/char on valid.txt (non-overlapping 64-character
windows over the whole file, each predicting its next characters) every `--eval-every` steps.

Usage (from the repository root; the venv tools/.venv holds torch 2.15 and jax 0.10.2):
    tools/.venv/bin/python bench/seq_peers.py --out-json /tmp/seq_peers.json --out-md /tmp/seq_peers.md
    tools/.venv/bin/python bench/seq_peers.py --only jax-jit --cases gpt_train_b32_t64
    tools/.venv/bin/python bench/seq_peers.py --train-check 300 --eval-every 100
Internal: --worker NAME --result PATH.
"""
import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "data", "kjv")

V, T, D, HEADS, FF, NBLOCKS = 63, 64, 128, 4, 512, 2
DH = D // HEADS
BATCH = 32
LSTM_F, LSTM_H = 64, 256
GEN_TOKENS = 200
ADAMW = dict(lr=1e-3, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8)
SGD_LR = 0.1

CASES = ["gpt_train_b32_t64", "gpt_infer_b1_t64", "lstm_train_b32_t64", "generate_tokens",
         "generate_tokens_kv"]
FRAMEWORKS = ["torch-eager", "torch-compile", "jax-jit"]
# not in the default list: torch.compile with dynamo's experimental allow_rnn (LSTM case only);
# by default dynamo breaks the graph at nn.LSTM, which then runs eagerly
EXTRA_FRAMEWORKS = ["torch-compile-rnn"]


# ----------------------------------------------------------------------------
# FLOP counts
# ----------------------------------------------------------------------------


def gpt_forward_flops(b, t=T):
    n = b * t
    block = (2 * n * D * 3 * D            # in_proj (q, k, v)
             + 2 * 2 * b * HEADS * t * t * DH  # Q·Kᵀ and attention·V
             + 2 * n * D * D              # out_proj
             + 2 * 2 * n * D * FF)        # the MLP's two products
    return NBLOCKS * block + 2 * n * D * V


def lstm_forward_flops(b, t=T):
    n = b * t
    return 2 * n * LSTM_F * 4 * LSTM_H + 2 * n * LSTM_H * 4 * LSTM_H + 2 * n * LSTM_H * V


def kv_token_flops(pos):
    per_block = 2 * (3 * D * D + D * D + 2 * FF * D) + 2 * 2 * D * (pos + 1)
    return NBLOCKS * per_block + 2 * D * V


def flops_table():
    return {
        "gpt_train_b32_t64": 3 * gpt_forward_flops(BATCH),
        "gpt_infer_b1_t64": gpt_forward_flops(1),
        "lstm_train_b32_t64": 3 * lstm_forward_flops(BATCH),
        "generate_tokens": GEN_TOKENS * gpt_forward_flops(1),
        "generate_tokens_kv": sum(kv_token_flops(p) for p in range(1, T)),
        "gpt_forward_b32": gpt_forward_flops(BATCH),
        "lstm_forward_b32": lstm_forward_flops(BATCH),
    }


# tokens produced by one call of the generation cases
TOKENS_PER_CALL = {"generate_tokens": GEN_TOKENS, "generate_tokens_kv": T - 1}

# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------


def load_text(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return f.read()


def vocab_of(text):
    chars = sorted(set(text))
    return {c: i for i, c in enumerate(chars)}, chars


def encode(text, stoi):
    import numpy as np
    return np.array([stoi[c] for c in text], dtype=np.int64)


def random_windows(ids, batch, rng):
    """`batch` random windows of T tokens and their next-token targets."""
    import numpy as np
    starts = rng.integers(0, len(ids) - T - 1, size=batch)
    x = np.stack([ids[s:s + T] for s in starts])
    y = np.stack([ids[s + 1:s + T + 1] for s in starts])
    return x, y


def bench_data():
    """A fixed batch of 32 random windows of train.txt (seed 0) and the 64-character prompt."""
    import numpy as np
    text = load_text("train.txt")
    stoi, chars = vocab_of(text)
    assert len(chars) == V, len(chars)
    ids = encode(text, stoi)
    x, y = random_windows(ids, BATCH, np.random.default_rng(0))
    prompt = ids[:T].copy()
    return x, y, prompt

# ----------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------


def _proc_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _sys_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return user + nice + system + irq + softirq, steal


CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
QUIET = 0.05


def foreign_load(window=0.5):
    c0, (b0, _) = _proc_cpu(), _sys_busy()
    t0 = time.perf_counter()
    time.sleep(window)
    wall = time.perf_counter() - t0
    b1, _ = _sys_busy()
    return max(0.0, ((b1 - b0) / CLK_TCK - (_proc_cpu() - c0)) / (wall * NCPU))


def wait_quiet(max_wait):
    t0 = time.perf_counter()
    while max_wait > 0:
        f = foreign_load()
        if f < QUIET or time.perf_counter() - t0 >= max_wait:
            return time.perf_counter() - t0, f
        time.sleep(1.0)
    return 0.0, None


def _quartiles(xs):
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def _measure_once(step, warmup, min_time, repeats):
    for _ in range(warmup):
        step()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        dt = time.perf_counter() - t0
        if dt >= min(0.2, min_time):
            break
        n *= 2
    n = max(1, int(math.ceil(n * min_time / dt)))
    per_call = []
    c0 = _proc_cpu()
    b0, s0 = _sys_busy()
    w0 = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        per_call.append((time.perf_counter() - t0) / n * 1e6)
    wall = time.perf_counter() - w0
    own = _proc_cpu() - c0
    b1, s1 = _sys_busy()
    q1, q3 = _quartiles(per_call)
    return {"median_us": statistics.median(per_call), "min_us": min(per_call),
            "max_us": max(per_call), "q1_us": q1, "q3_us": q3, "repeats_us": per_call,
            "calls_per_repeat": n, "wall_s": wall, "cpu_over_wall": own / wall,
            # the worker's own CPU time per call: what the call costs when the machine is shared
            # (wall time counts the slices other processes take from the pinned CPU)
            "cpu_us_per_call": own / (repeats * n) * 1e6,
            "foreign_cpu_frac": max(0.0, ((b1 - b0) / CLK_TCK - own) / (wall * NCPU)),
            "steal_frac": (s1 - s0) / CLK_TCK / (wall * NCPU)}


def measure(step, args):
    best, waited = None, 0.0
    for attempt in range(1, args.attempts + 1):
        w, _ = wait_quiet(args.quiet_wait)
        waited += w
        la0 = os.getloadavg()
        r = _measure_once(step, args.warmup if attempt == 1 else 3, args.min_time, args.repeats)
        r["loadavg_before"], r["loadavg_after"] = la0, os.getloadavg()
        if best is None or r["foreign_cpu_frac"] < best["foreign_cpu_frac"]:
            best = r
        if r["foreign_cpu_frac"] < QUIET:
            break
    best["attempts"], best["quiet_wait_s"] = attempt, waited
    return best


def run_case(out, case, build, args, label, extra=None):
    """build() -> (step, check) where check() returns a dict of sanity values (loss etc.)."""
    try:
        t0 = time.perf_counter()
        step, check = build()
        before = check()
        step()
        first = time.perf_counter() - t0
        r = measure(step, args)
        r.update({"case": case, "first_call_s": first, "check_before": before, "check_after": check()})
        if extra:
            r.update(extra)
    except Exception as e:  # a framework that cannot run a case is a row, not a crash
        import traceback
        r = {"case": case, "error": f"{type(e).__name__}: {e}"[:2000],
             "traceback": traceback.format_exc()[-4000:]}
        print(f"  {label} {case}: FAILED {r['error'][:300]}", file=sys.stderr, flush=True)
        out.append(r)
        return
    out.append(r)
    print(f"  {label} {case}: median {r['median_us']:,.0f} us (min {r['min_us']:,.0f}, "
          f"cpu/call {r['cpu_us_per_call']:,.0f} us, "
          f"max {r['max_us']:,.0f}) cpu/wall {r['cpu_over_wall']:.2f} foreign {r['foreign_cpu_frac']*100:.0f}% "
          f"load {r['loadavg_before'][0]:.2f} first call {r['first_call_s']:.1f} s "
          f"check {r['check_before']} -> {r['check_after']}", file=sys.stderr, flush=True)

# ----------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------


def torch_models():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        """Pre-LN transformer block: x + attn(ln1(x)), then x + fc2(gelu(fc1(ln2(x))))."""

        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(D)
            self.attn = nn.MultiheadAttention(D, HEADS, dropout=0.0, batch_first=True)
            self.ln2 = nn.LayerNorm(D)
            self.fc1 = nn.Linear(D, FF)
            self.fc2 = nn.Linear(FF, D)
            self.register_buffer("mask", torch.triu(torch.full((T, T), float("-inf")), 1),
                                 persistent=False)

        def forward(self, x):
            t = x.shape[1]
            h = self.ln1(x)
            x = x + self.attn(h, h, h, attn_mask=self.mask[:t, :t], need_weights=False,
                              is_causal=True)[0]
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class CharGpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, D)
            self.pos = nn.Parameter(torch.randn(T, D) * 0.02)
            self.blocks = nn.ModuleList([Block() for _ in range(NBLOCKS)])
            self.ln = nn.LayerNorm(D)
            self.head = nn.Linear(D, V)

        def forward(self, idx):
            x = self.embed(idx) + self.pos[:idx.shape[1]]
            for b in self.blocks:
                x = b(x)
            return self.head(self.ln(x))

        @torch.no_grad()
        def step_cached(self, tok, pos, cache):
            """Logits [V] for token `tok` at position `pos`, appending its keys and values to
            `cache` (one [2, HEADS, T, DH] buffer per block; positions < pos already filled)."""
            x = self.embed.weight[tok] + self.pos[pos]
            for b, kv in zip(self.blocks, cache):
                h = F.layer_norm(x, (D,), b.ln1.weight, b.ln1.bias)
                q, k, v = F.linear(h, b.attn.in_proj_weight, b.attn.in_proj_bias).view(3, HEADS, DH)
                kv[0, :, pos] = k
                kv[1, :, pos] = v
                s = torch.einsum("hd,htd->ht", q, kv[0, :, :pos + 1]) / math.sqrt(DH)
                o = torch.einsum("ht,htd->hd", torch.softmax(s, -1), kv[1, :, :pos + 1])
                x = x + F.linear(o.reshape(D), b.attn.out_proj.weight, b.attn.out_proj.bias)
                h = F.layer_norm(x, (D,), b.ln2.weight, b.ln2.bias)
                x = x + b.fc2(F.gelu(b.fc1(h)))
            return self.head(F.layer_norm(x, (D,), self.ln.weight, self.ln.bias))

    class CharLstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, LSTM_F)
            self.rnn = nn.LSTM(LSTM_F, LSTM_H, batch_first=True)
            self.head = nn.Linear(LSTM_H, V)

        def forward(self, idx):
            return self.head(self.rnn(self.embed(idx))[0])

    return CharGpt, CharLstm


def worker_torch(args, compiled, allow_rnn=False):
    import torch
    import torch.nn.functional as F
    if allow_rnn:
        torch._dynamo.config.allow_rnn = True  # experimental: dynamo traces nn.LSTM (unrolled)
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    CharGpt, CharLstm = torch_models()
    xn, yn, prompt = bench_data()
    x, y = torch.from_numpy(xn), torch.from_numpy(yn)
    label = ("torch.compile+allow_rnn" if allow_rnn else "torch.compile") if compiled else "torch-eager"

    def ce(logits, y):
        return F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))

    def build_train(make, make_opt):
        def build():
            if compiled:
                torch._dynamo.reset()
            torch.manual_seed(0)
            m = make()
            opt = make_opt(m)
            loss_fn = lambda xx, yy: ce(m(xx), yy)
            if compiled:
                loss_fn = torch.compile(loss_fn, dynamic=False)

                @torch.compile(fullgraph=False, dynamic=False)
                def opt_step():
                    opt.step()
            else:
                opt_step = opt.step

            def step():
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(x, y)
                loss.backward()
                opt_step()

            def check():
                with torch.no_grad():
                    return round(float(ce(m(x), y)), 4)
            return step, check
        return build

    def build_infer():
        if compiled:
            torch._dynamo.reset()
        torch.manual_seed(0)
        m = CharGpt().eval()
        f = torch.compile(m, dynamic=False) if compiled else m
        x1 = x[:1]

        def step():
            with torch.inference_mode():
                f(x1)

        def check():
            with torch.inference_mode():
                return round(float((f(x1) - m(x1)).abs().max()), 7)  # compiled vs eager
        return step, check

    def build_generate():
        if compiled:
            torch._dynamo.reset()
        torch.manual_seed(0)
        m = CharGpt().eval()
        f = torch.compile(m, dynamic=False) if compiled else m
        g = torch.Generator().manual_seed(0)
        start = torch.from_numpy(prompt).view(1, T)
        last = {}

        def step():
            w = start
            toks = []
            with torch.inference_mode():
                for _ in range(GEN_TOKENS):
                    probs = torch.softmax(f(w)[0, -1], -1)
                    tok = torch.multinomial(probs, 1, generator=g)
                    toks.append(int(tok))  # a plain generator hands every token out as it comes
                    w = torch.cat([w[:, 1:], tok.view(1, 1)], 1)
            last["toks"] = toks

        def check():
            return len(last.get("toks", []))
        return step, check

    def build_generate_kv():
        torch.manual_seed(0)
        m = CharGpt().eval()
        g = torch.Generator().manual_seed(0)
        cache = [torch.zeros(2, HEADS, T, DH) for _ in range(NBLOCKS)]
        first = int(prompt[0])
        # the cached path must give the full forward's logits
        with torch.inference_mode():
            seq = torch.from_numpy(prompt).view(1, T)
            full = m(seq)[0]
            for p in range(T):
                got = m.step_cached(int(seq[0, p]), p, cache)
                assert torch.allclose(got, full[p], atol=1e-4), (p, float((got - full[p]).abs().max()))
        last = {}

        def step():
            toks = [first]
            with torch.inference_mode():
                logits = m.step_cached(first, 0, cache)
                for p in range(1, T):
                    tok = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=g))
                    toks.append(tok)
                    logits = m.step_cached(tok, p, cache)
            last["toks"] = toks

        def check():
            return max(0, len(last.get("toks", [])) - 1)
        return step, check

    out = []
    for case in args.cases:
        if allow_rnn and case != "lstm_train_b32_t64":
            continue  # this variant only differs from torch-compile for the LSTM
        if case == "gpt_train_b32_t64":
            run_case(out, case, build_train(
                CharGpt, lambda m: torch.optim.AdamW(m.parameters(), **ADAMW)), args, label)
        elif case == "lstm_train_b32_t64":
            run_case(out, case, build_train(
                CharLstm, lambda m: torch.optim.SGD(m.parameters(), lr=SGD_LR)), args, label)
        elif case == "gpt_infer_b1_t64":
            run_case(out, case, build_infer, args, label)
        elif case == "generate_tokens":
            run_case(out, case, build_generate, args, label)
        elif case == "generate_tokens_kv" and not compiled:
            run_case(out, case, build_generate_kv, args, label)
    return {"version": torch.__version__, "intra_threads": torch.get_num_threads(),
            "dynamo_allow_rnn": bool(torch._dynamo.config.allow_rnn),
            "interop_threads": torch.get_num_interop_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": torch.backends.mkldnn.is_available(), "results": out}

# ----------------------------------------------------------------------------
# JAX
# ----------------------------------------------------------------------------


def jax_models():
    import jax
    import jax.numpy as jnp

    def dense_init(key, i, o):
        k1, k2 = jax.random.split(key)
        bound = 1.0 / math.sqrt(i)  # nn.Linear's default
        return (jax.random.uniform(k1, (i, o), jnp.float32, -bound, bound),
                jax.random.uniform(k2, (o,), jnp.float32, -bound, bound))

    def gpt_init(key):
        ks = jax.random.split(key, 4 + NBLOCKS)
        p = {"embed": jax.random.normal(ks[0], (V, D), jnp.float32),
             "pos": jax.random.normal(ks[1], (T, D), jnp.float32) * 0.02,
             "ln_g": jnp.ones((D,)), "ln_b": jnp.zeros((D,)), "blocks": []}
        p["w_head"], p["b_head"] = dense_init(ks[2], D, V)
        for j in range(NBLOCKS):
            kb = jax.random.split(ks[4 + j], 4)
            lim = math.sqrt(6.0 / (D + 3 * D))  # xavier_uniform of [3D, D], like nn.MultiheadAttention
            b = {"ln1_g": jnp.ones((D,)), "ln1_b": jnp.zeros((D,)),
                 "ln2_g": jnp.ones((D,)), "ln2_b": jnp.zeros((D,)),
                 "w_in": jax.random.uniform(kb[0], (D, 3 * D), jnp.float32, -lim, lim),
                 "b_in": jnp.zeros((3 * D,))}
            b["w_out"], b["b_out"] = dense_init(kb[1], D, D)
            b["w1"], b["b1"] = dense_init(kb[2], D, FF)
            b["w2"], b["b2"] = dense_init(kb[3], FF, D)
            p["blocks"].append(b)
        return p

    def layer_norm(x, g, b):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) * jax.lax.rsqrt(v + 1e-5) * g + b

    def attention(b, h):
        bs, t, _ = h.shape
        qkv = h @ b["w_in"] + b["b_in"]
        q, k, v = [a.reshape(bs, t, HEADS, DH) for a in jnp.split(qkv, 3, -1)]
        s = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(DH)
        causal = jnp.tril(jnp.ones((t, t), bool))
        s = jnp.where(causal, s, -jnp.inf)
        o = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(s, -1), v).reshape(bs, t, D)
        return o @ b["w_out"] + b["b_out"]

    def gpt_forward(p, idx):
        x = p["embed"][idx] + p["pos"][:idx.shape[1]]
        for b in p["blocks"]:
            x = x + attention(b, layer_norm(x, b["ln1_g"], b["ln1_b"]))
            h = layer_norm(x, b["ln2_g"], b["ln2_b"])
            x = x + jax.nn.gelu(h @ b["w1"] + b["b1"], approximate=False) @ b["w2"] + b["b2"]
        return layer_norm(x, p["ln_g"], p["ln_b"]) @ p["w_head"] + p["b_head"]

    def lstm_init(key):
        ks = jax.random.split(key, 6)
        lim = 1.0 / math.sqrt(LSTM_H)
        u = lambda k, s: jax.random.uniform(k, s, jnp.float32, -lim, lim)
        p = {"embed": jax.random.normal(ks[0], (V, LSTM_F), jnp.float32),
             "w_ih": u(ks[1], (LSTM_F, 4 * LSTM_H)), "w_hh": u(ks[2], (LSTM_H, 4 * LSTM_H)),
             "b_ih": u(ks[3], (4 * LSTM_H,)), "b_hh": u(ks[4], (4 * LSTM_H,))}
        p["w_head"], p["b_head"] = dense_init(ks[5], LSTM_H, V)
        return p

    def lstm_forward(p, idx):
        bs = idx.shape[0]
        x = p["embed"][idx]
        xi = x @ p["w_ih"] + p["b_ih"] + p["b_hh"]  # every step's input product at once

        def cell(carry, xt):
            h, c = carry
            i, f, g, o = jnp.split(xt + h @ p["w_hh"], 4, -1)  # PyTorch's gate order
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        z = jnp.zeros((bs, LSTM_H), jnp.float32)
        _, hs = jax.lax.scan(cell, (z, z), xi.transpose(1, 0, 2))
        return hs.transpose(1, 0, 2) @ p["w_head"] + p["b_head"]

    return gpt_init, gpt_forward, lstm_init, lstm_forward


def worker_jax(args):
    import jax
    import jax.numpy as jnp
    import jaxlib
    gpt_init, gpt_forward, lstm_init, lstm_forward = jax_models()
    xn, yn, prompt = bench_data()
    x, y = jnp.asarray(xn.astype("int32")), jnp.asarray(yn.astype("int32"))
    tm = jax.tree_util.tree_map

    def ce(logits, y):
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[..., None], axis=-1))

    def adamw(state, grads):
        """torch.optim.AdamW's update (decoupled weight decay, bias-corrected moments)."""
        p, m, v, t = state
        lr, wd, (b1, b2), eps = ADAMW["lr"], ADAMW["weight_decay"], ADAMW["betas"], ADAMW["eps"]
        t = t + 1
        m = tm(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = tm(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        p = tm(lambda p, m, v: p * (1 - lr * wd) - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), p, m, v)
        return p, m, v, t

    def build_gpt_train():
        p = gpt_init(jax.random.PRNGKey(0))
        zeros = tm(jnp.zeros_like, p)
        state = {"s": (p, zeros, tm(jnp.zeros_like, p), jnp.zeros((), jnp.float32))}

        def train_step(s, x, y):
            loss, g = jax.value_and_grad(lambda q: ce(gpt_forward(q, x), y))(s[0])
            return adamw(s, g), loss

        jstep = jax.jit(train_step, donate_argnums=0)
        jloss = jax.jit(lambda q: ce(gpt_forward(q, x), y))

        def step():
            s, loss = jstep(state["s"], x, y)
            loss.block_until_ready()
            state["s"] = s

        def check():
            return round(float(jloss(state["s"][0])), 4)
        return step, check

    def build_lstm_train():
        state = {"p": lstm_init(jax.random.PRNGKey(0))}

        def train_step(p, x, y):
            loss, g = jax.value_and_grad(lambda q: ce(lstm_forward(q, x), y))(p)
            return tm(lambda a, b: a - SGD_LR * b, p, g), loss

        jstep = jax.jit(train_step, donate_argnums=0)
        jloss = jax.jit(lambda q: ce(lstm_forward(q, x), y))

        def step():
            p, loss = jstep(state["p"], x, y)
            loss.block_until_ready()
            state["p"] = p

        def check():
            return round(float(jloss(state["p"])), 4)
        return step, check

    def build_infer():
        p = gpt_init(jax.random.PRNGKey(0))
        f = jax.jit(gpt_forward)
        x1 = x[:1]

        def step():
            f(p, x1).block_until_ready()

        def check():
            return list(f(p, x1).shape)
        return step, check

    def build_generate():
        p = gpt_init(jax.random.PRNGKey(0))

        @jax.jit
        def next_token(p, w, key):
            tok = jax.random.categorical(key, gpt_forward(p, w)[0, -1])
            return tok, jnp.concatenate([w[:, 1:], tok.reshape(1, 1).astype(w.dtype)], 1)

        start = jnp.asarray(prompt.astype("int32")).reshape(1, T)
        state = {"key": jax.random.PRNGKey(0)}
        last = {}

        def step():
            w, key, toks = start, state["key"], []
            for _ in range(GEN_TOKENS):
                key, sub = jax.random.split(key)
                tok, w = next_token(p, w, sub)
                toks.append(int(tok))  # a plain generator hands every token out as it comes
            state["key"] = key
            last["toks"] = toks

        def check():
            return len(last.get("toks", []))
        return step, check

    builders = {"gpt_train_b32_t64": build_gpt_train, "lstm_train_b32_t64": build_lstm_train,
                "gpt_infer_b1_t64": build_infer, "generate_tokens": build_generate}
    out = []
    for case in args.cases:
        if case in builders:
            run_case(out, case, builders[case], args, "jax")
    return {"version": jax.__version__, "jaxlib": jaxlib.__version__,
            "devices": [str(d) for d in jax.devices()], "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
            "results": out}

# ----------------------------------------------------------------------------
# roofline
# ----------------------------------------------------------------------------


def worker_roofline(args):
    import numpy as np
    rng = np.random.default_rng(0)
    out = []
    for (m, k, n) in [(1024, 1024, 1024), (2048, 128, 512), (2048, 512, 128)]:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        case = f"sgemm_{m}x{k}x{n}"
        run_case(out, case, lambda: (lambda: np.matmul(a, b, out=c), lambda: None), args, "numpy",
                 extra={"flops": 2 * m * k * n})
    return {"numpy": np.__version__, "results": out}

# ----------------------------------------------------------------------------
# training check (PyTorch eager, one thread)
# ----------------------------------------------------------------------------


def worker_train_check(args):
    import numpy as np
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    CharGpt, _ = torch_models()
    train, valid = load_text("train.txt"), load_text("valid.txt")
    stoi, chars = vocab_of(train)
    ids = encode(train, stoi)
    vids = encode(valid, stoi)  # valid.txt's characters all occur in train.txt
    nwin = (len(vids) - 1) // T
    vx = torch.from_numpy(vids[:nwin * T].reshape(nwin, T))
    vy = torch.from_numpy(vids[1:nwin * T + 1].reshape(nwin, T))
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    m = CharGpt()
    opt = torch.optim.AdamW(m.parameters(), **ADAMW)

    def valid_loss():
        m.eval()
        tot = 0.0
        with torch.inference_mode():
            for i in range(0, nwin, 256):
                lg = m(vx[i:i + 256])
                tot += float(F.cross_entropy(lg.reshape(-1, V), vy[i:i + 256].reshape(-1),
                                             reduction="sum"))
        m.train()
        return tot / (nwin * T)

    curve, window = [], []
    t0 = time.perf_counter()
    v = valid_loss()
    curve.append({"step": 0, "valid": v, "train": None, "elapsed_s": 0.0, "loadavg": os.getloadavg()})
    print(f"  step 0: valid {v:.4f} nats/char", file=sys.stderr, flush=True)
    train_s = 0.0
    for s in range(1, args.train_check + 1):
        t1 = time.perf_counter()
        xb, yb = random_windows(ids, BATCH, rng)
        xb, yb = torch.from_numpy(xb), torch.from_numpy(yb)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(xb).reshape(-1, V), yb.reshape(-1))
        loss.backward()
        opt.step()
        train_s += time.perf_counter() - t1
        window.append(float(loss.detach()))
        if s % args.eval_every == 0 or s == args.train_check:
            v = valid_loss()
            tr = sum(window) / len(window)
            window = []
            curve.append({"step": s, "valid": v, "train": tr, "train_s": train_s,
                          "elapsed_s": time.perf_counter() - t0, "loadavg": os.getloadavg()})
            print(f"  step {s}: train {tr:.4f} (mean of the last {args.eval_every}), valid {v:.4f} "
                  f"nats/char; {train_s:.0f} s training, load {os.getloadavg()[0]:.2f}",
                  file=sys.stderr, flush=True)
    return {"version": torch.__version__, "valid_chars": nwin * T, "curve": curve,
            "ms_per_step": train_s / args.train_check * 1e3}

# ----------------------------------------------------------------------------
# orchestration
# ----------------------------------------------------------------------------

THREAD_ENV_KEYS = ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"]


def worker_env():
    env = dict(os.environ)
    for k in THREAD_ENV_KEYS:
        env[k] = "1"
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def run_worker(args):
    os.sched_setaffinity(0, {args.cpu})  # before any framework creates a thread
    t0 = time.perf_counter()
    la0 = os.getloadavg()
    if args.worker == "torch-eager":
        out = worker_torch(args, compiled=False)
    elif args.worker == "torch-compile":
        out = worker_torch(args, compiled=True)
    elif args.worker == "torch-compile-rnn":
        out = worker_torch(args, compiled=True, allow_rnn=True)
    elif args.worker == "jax-jit":
        out = worker_jax(args)
    elif args.worker == "roofline":
        out = worker_roofline(args)
    elif args.worker == "train-check":
        out = worker_train_check(args)
    else:
        raise SystemExit("unknown worker " + args.worker)
    out.update({"affinity": sorted(os.sched_getaffinity(0)),
                "threads_in_process": len(os.listdir("/proc/self/task")),
                "worker_wall_s": time.perf_counter() - t0, "loadavg_start": la0,
                "loadavg_end": os.getloadavg()})
    with open(args.result, "w") as f:
        json.dump(out, f)


def spawn(worker, args, timeout=3600):
    fd, path = tempfile.mkstemp(suffix=".json", prefix="seqpeers_")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--result", path,
           "--cpu", str(args.cpu), "--min-time", str(args.min_time), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--quiet-wait", str(args.quiet_wait),
           "--attempts", str(args.attempts), "--cases", ",".join(args.cases),
           "--train-check", str(args.train_check), "--eval-every", str(args.eval_every)]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    lines = []
    for line in p.stderr:
        line = line.rstrip("\n")
        lines.append(line)
        if line.startswith("  "):
            print(line, flush=True)
    rc = p.wait(timeout=timeout)
    if rc != 0:
        os.unlink(path)
        tail = "\n".join(lines[-30:])
        print(f"!! worker {worker} failed rc={rc}\n{tail}", flush=True)
        return {"error": f"rc={rc}", "stderr_tail": tail}
    with open(path) as f:
        out = json.load(f)
    os.unlink(path)
    out["process_wall_s"] = time.perf_counter() - t0
    return out


def sysinfo():
    info = {"platform": platform.platform(), "python": sys.version.split()[0], "nproc": NCPU}
    try:
        for line in subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU family", "Model", "L2 cache", "L3 cache",
                             "Hypervisor vendor"):
                info[k.strip()] = v.strip()
            if k.strip() == "Flags":
                info["avx512"] = "avx512f" in v.split()
    except OSError:
        pass
    from importlib import metadata
    info["versions"] = {}
    for pkg in ("torch", "jax", "jaxlib", "numpy", "optax"):
        try:
            info["versions"][pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return info


def fmt(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}" if x < 10 else f"{x:.1f}"


def write_md(data, path):
    fl = data["flops"]
    L = ["# Issue 19 peers: PyTorch eager, torch.compile, JAX jit at one thread\n",
         f"`bench/seq_peers.py`, {data['date']}, total {data['total_wall_s']:.0f} s. "
         f"Machine: {data['sysinfo'].get('Model name')} (family {data['sysinfo'].get('CPU family')}, "
         f"model {data['sysinfo'].get('Model')}, AVX-512 {data['sysinfo'].get('avx512')}), "
         f"{data['sysinfo']['nproc']} CPUs, {data['sysinfo'].get('Hypervisor vendor')}; "
         f"versions {data['sysinfo']['versions']}. Pinned to CPU {data['config']['cpu']}; "
         f"warm-up {data['config']['warmup']} calls, {data['config']['repeats']} repeats of >= "
         f"{data['config']['min_time']} s.\n",
         "Wall time is what the tables of the project compare; on a shared machine it counts the slices other "
         "processes take from the pinned CPU, so `CPU/call` (the worker's own CPU time per call, rusage) "
         "and the GFLOP/s from it are given too: a provisional, load-robust figure until a quiet sitting. "
         "`load` is the 1-minute load average before and after the case, `foreign CPU` the share of "
         "the machine's CPUs other processes used during the timed repeats.\n",
         "| framework | case | median | min–max | quartiles | spread (max−min)/median | GFLOP/s | "
         "CPU/call | GFLOP/s (CPU time) | tokens/s (wall / CPU) | load before→after | foreign CPU | "
         "cpu/wall | first call s | check before → after |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for fw, w in data["runs"].items():
        if "results" not in w:
            L.append(f"| {fw} | (all) | FAILED: {w.get('error')} | | | | | | | | | | | | |")
            continue
        for r in w["results"]:
            c = r["case"]
            if "error" in r:
                L.append(f"| {fw} | {c} | FAILED: {r['error'][:200]} | | | | | | | | | | | | |")
                continue
            med = r["median_us"]
            flops = r.get("flops", fl.get(c))
            cpu = r["cpu_us_per_call"]
            gf = f"{flops / med / 1e3:.1f}" if flops else "-"
            gfc = f"{flops / cpu / 1e3:.1f}" if flops else "-"
            tps = (f"{TOKENS_PER_CALL[c] / med * 1e6:,.0f} / {TOKENS_PER_CALL[c] / cpu * 1e6:,.0f}"
                   if c in TOKENS_PER_CALL else "-")
            unit = lambda us: f"{us / 1e3:,.2f} ms" if us >= 1000 else f"{us:,.1f} µs"
            L.append(f"| {fw} | {c} | {unit(med)} | {unit(r['min_us'])}–{unit(r['max_us'])} | "
                     f"{unit(r['q1_us'])}–{unit(r['q3_us'])} | "
                     f"{(r['max_us'] - r['min_us']) / med * 100:.1f}% | {gf} | {unit(cpu)} | {gfc} | {tps} | "
                     f"{r['loadavg_before'][0]:.2f}→{r['loadavg_after'][0]:.2f} | "
                     f"{r['foreign_cpu_frac'] * 100:.0f}% | {r['cpu_over_wall']:.2f} | "
                     f"{r['first_call_s']:.1f} | {r['check_before']} → {r['check_after']} |")
    L.append("\nFLOPs (products only, 2 per multiply-add; see the script's docstring): " +
             ", ".join(f"{k} {v / 1e9:.4f} GFLOP" for k, v in fl.items()) + ".\n")
    with open(path, "w") as f:
        f.write("\n".join(L))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker")
    ap.add_argument("--result")
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--only", default="roofline," + ",".join(FRAMEWORKS))
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--quiet-wait", type=float, default=0.0)
    ap.add_argument("--attempts", type=int, default=1)
    ap.add_argument("--train-check", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--out-json", default="/tmp/seq_peers.json")
    ap.add_argument("--out-md", default="/tmp/seq_peers.md")
    args = ap.parse_args()
    args.cases = [c for c in args.cases.split(",") if c]
    for c in args.cases:
        if c not in CASES:
            raise SystemExit(f"unknown case {c}; known: {', '.join(CASES)}")
    if args.worker:
        run_worker(args)
        return
    T0 = time.perf_counter()
    data = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "sysinfo": sysinfo(),
            "flops": flops_table(), "runs": {},
            "config": {k: getattr(args, k) for k in ("cpu", "min_time", "repeats", "warmup",
                                                      "quiet_wait", "attempts", "cases")}}
    print(json.dumps(data["sysinfo"]), flush=True)
    if args.train_check:
        print(f"== train-check {args.train_check} steps (PyTorch eager, CPU {args.cpu})", flush=True)
        data["train_check"] = spawn("train-check", args)
    else:
        for fw in args.only.split(","):
            print(f"== {fw} (CPU {args.cpu}, uptime: {os.getloadavg()})", flush=True)
            data["runs"][fw] = spawn(fw, args)
    data["total_wall_s"] = time.perf_counter() - T0
    with open(args.out_json, "w") as f:
        json.dump(data, f, indent=1)
    if not args.train_check:
        write_md(data, args.out_md)
    print(f"wrote {args.out_json}" + ("" if args.train_check else f" and {args.out_md}") +
          f"; total {data['total_wall_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
