#!/usr/bin/env python3
"""Reference fixtures for staticnet's sequence layers (issue 19), from PyTorch.

PyTorch is the independent reference here: every layer is the real
``torch.nn`` module (``nn.LSTM``, ``nn.GRU``, ``nn.Conv1d``,
``nn.MultiheadAttention``, ``nn.LayerNorm``, ``nn.Linear``), and every gradient
comes from ``loss.backward()``. Everything is float64
(``torch.set_default_dtype(torch.float64)``), on one CPU thread.

Run from the repo root (see tools/README.md for the venv):

    tools/.venv/bin/python tools/gen_seq_fixtures.py            # write tests/fixtures/seq_*.json
    tools/.venv/bin/python tools/gen_seq_fixtures.py --check-load FILE.safetensors [--json FILE.json]

The first form writes the fixtures and checks itself (AssertionError if not):
  * an independent numpy forward pass, written from PyTorch's documented
    equations (gate order i, f, g, o / r, z, n; explicit conv1d tap loops;
    per-head attention), must match the torch output to 1e-12;
  * ``torch.autograd.gradcheck`` (central finite differences) must accept the
    loss as a function of the input and of every parameter;
  * the written JSON must parse back to exactly the same float64 values;
  * the parameter names must be exactly the expected ones (for the networks:
    the names a staticnet ``network!`` gives them);
  * ``--check-load`` must accept a file that torch itself wrote (a self-test
    in a temporary directory; nothing is left behind).

Parameters are drawn as ``N(0, 1) * 0.5`` and inputs / loss weights ``r`` as
``N(0, 1)`` from numpy generators with fixed seeds (not PyTorch's init, so
every value matters). On one machine a rerun gives byte-identical files.

``--check-load`` reads a safetensors file saved by staticnet, loads its
tensors into ``nn.LSTM`` / ``nn.GRU`` / ``nn.MultiheadAttention`` by name with
``load_state_dict(strict=True)`` and compares the module's outputs on the
JSON's ``x`` with the JSON's ``y`` (see tools/README.md for the JSON).
"""

import argparse
import json
import math
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import safetensors
import torch
from safetensors.torch import load_file as st_load_file
from safetensors.torch import save_file as st_save_file
from torch import nn
from torch.nn import functional as F

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # fixed reduction order: reruns are byte-identical

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "tests" / "fixtures"
GENERATOR = f"tools/gen_seq_fixtures.py, torch {torch.__version__.split('+')[0]}, float64"

BATCH = 3
PARAM_SCALE = 0.5
NP_TOL = 1e-12  # numpy forward vs torch
CHECK_LOAD_RTOL = 1e-5  # default for --check-load: |torch - json| <= rtol * max(1, |torch|)


# --------------------------------------------------------------------------
# Modules with a one-tensor forward and PyTorch's own parameter names
# --------------------------------------------------------------------------


class SeqLstm(nn.LSTM):
    """nn.LSTM (batch_first) returning every step's hidden state, h0 = c0 = 0."""

    def forward(self, x):
        return super().forward(x)[0]


class SeqGru(nn.GRU):
    """nn.GRU (batch_first) returning every step's hidden state, h0 = 0."""

    def forward(self, x):
        return super().forward(x)[0]


class SeqConv1d(nn.Conv1d):
    """nn.Conv1d over the steps of a [B, T, F] input: transposed to [B, F, T],
    convolved, transposed back to [B, T', C]."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention(batch_first=True) self-attention, q = k = v = x,
    need_weights=False; causal: attn_mask = generate_square_subsequent_mask."""

    def __init__(self, embed_dim, num_heads, causal):
        super().__init__(embed_dim, num_heads, batch_first=True)
        self.causal = causal

    def forward(self, x):
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1]) if self.causal else None
        return super().forward(x, x, x, attn_mask=mask, need_weights=False)[0]


class Residual(nn.Module):
    """staticnet's `residual { ... }` with an identity skip: x + body(x);
    parameters `<name>.body.<j>.*` like tools/gen_fixtures.py."""

    def __init__(self, *body):
        super().__init__()
        self.body = nn.Sequential(*body)

    def forward(self, x):
        return x + self.body(x)


class Positional(nn.Module):
    """staticnet's `positional`: a learned [T, D] table `weight` added to the input."""

    def __init__(self, steps, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(steps, dim))

    def forward(self, x):
        return x + self.weight


class MaxPool1dSteps(nn.MaxPool1d):
    """nn.MaxPool1d over the steps of [B, T, F] (transposed like SeqConv1d)."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class GlobalAvgPool1d(nn.Module):
    """staticnet's `global_avg_pool` on [B, T, F]: the mean over steps, [B, F]."""

    def forward(self, x):
        return x.mean(dim=1)


class Last(nn.Module):
    """staticnet's `last`: [B, T, F] -> [B, F]."""

    def forward(self, x):
        return x[:, -1, :]


# --------------------------------------------------------------------------
# Independent numpy forwards (PyTorch's documented equations)
# --------------------------------------------------------------------------


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def np_lstm(p, x, pre=""):
    w_ih, w_hh = p[pre + "weight_ih_l0"], p[pre + "weight_hh_l0"]
    b = p[pre + "bias_ih_l0"] + p[pre + "bias_hh_l0"]
    hid = w_hh.shape[1]
    bsz, steps, _ = x.shape
    h = np.zeros((bsz, hid))
    c = np.zeros((bsz, hid))
    out = np.zeros((bsz, steps, hid))
    for t in range(steps):
        g = x[:, t] @ w_ih.T + h @ w_hh.T + b
        i, f, gg, o = (g[:, k * hid:(k + 1) * hid] for k in range(4))  # gates i, f, g, o
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(gg)
        h = sigmoid(o) * np.tanh(c)
        out[:, t] = h
    return out


def np_gru(p, x, pre=""):
    w_ih, w_hh = p[pre + "weight_ih_l0"], p[pre + "weight_hh_l0"]
    b_ih, b_hh = p[pre + "bias_ih_l0"], p[pre + "bias_hh_l0"]
    hid = w_hh.shape[1]
    bsz, steps, _ = x.shape
    h = np.zeros((bsz, hid))
    out = np.zeros((bsz, steps, hid))
    for t in range(steps):
        gi = x[:, t] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        s = [slice(k * hid, (k + 1) * hid) for k in range(3)]  # gates r, z, n
        r = sigmoid(gi[:, s[0]] + gh[:, s[0]])
        z = sigmoid(gi[:, s[1]] + gh[:, s[1]])
        n = np.tanh(gi[:, s[2]] + r * gh[:, s[2]])
        h = (1.0 - z) * n + z * h
        out[:, t] = h
    return out


def np_conv1d(p, x, stride, padding, dilation, pre=""):
    """x [B, T, F] -> [B, T', C]; explicit loop over output steps and taps."""
    w = p[pre + "weight"]  # [C, F, K]
    c_out, _, k = w.shape
    bsz, steps, _ = x.shape
    out_steps = (steps + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((bsz, out_steps, c_out))
    for to in range(out_steps):
        acc = np.zeros((bsz, c_out))
        for tap in range(k):
            ti = to * stride - padding + tap * dilation
            if 0 <= ti < steps:
                acc += x[:, ti, :] @ w[:, :, tap].T
        if pre + "bias" in p:
            acc += p[pre + "bias"]
        out[:, to] = acc
    return out


def np_attention(p, x, heads, causal, pre=""):
    w, b = p[pre + "in_proj_weight"], p[pre + "in_proj_bias"]
    d = w.shape[1]
    dh = d // heads
    steps = x.shape[1]
    q = x @ w[:d].T + b[:d]
    k = x @ w[d:2 * d].T + b[d:2 * d]
    v = x @ w[2 * d:].T + b[2 * d:]
    o = np.zeros_like(q)
    for hd in range(heads):
        s = slice(hd * dh, (hd + 1) * dh)
        scores = q[:, :, s] @ k[:, :, s].transpose(0, 2, 1) / math.sqrt(dh)  # [B, Tq, Tk]
        if causal:
            scores = np.where(np.triu(np.ones((steps, steps), dtype=bool), 1), -np.inf, scores)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        o[:, :, s] = (scores / scores.sum(axis=-1, keepdims=True)) @ v[:, :, s]
    return o @ p[pre + "out_proj.weight"].T + p[pre + "out_proj.bias"]


def np_layer_norm(p, x, eps, pre=""):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)  # biased, like PyTorch
    return (x - mu) / np.sqrt(var + eps) * p[pre + "weight"] + p[pre + "bias"]


def np_linear(p, x, pre=""):
    return x @ p[pre + "weight"].T + p[pre + "bias"]


def np_gelu(v):
    return 0.5 * v * (1.0 + np.vectorize(math.erf)(v / math.sqrt(2.0)))


def np_block(p, x):
    h = x + np_attention(p, np_layer_norm(p, x, 1e-5, "att.body.0."), 2, True, "att.body.1.")
    f = np_layer_norm(p, h, 1e-5, "ff.body.0.")
    h = h + np_linear(p, np_gelu(np_linear(p, f, "ff.body.1.")), "ff.body.3.")
    return np_linear(p, np_layer_norm(p, h, 1e-5, "2."), "head.")


def np_token_block(p, tokens):
    x = p["embed.weight"][tokens] + p["pos.weight"]
    h = x + np_attention(p, np_layer_norm(p, x, 1e-5, "att.body.0."), 2, True, "att.body.1.")
    f = np_layer_norm(p, h, 1e-5, "ff.body.0.")
    h = h + np_linear(p, np_gelu(np_linear(p, f, "ff.body.1.")), "ff.body.3.")
    return np_linear(p, np_layer_norm(p, h, 1e-5, "4."), "head.")


def np_conv_net(p, x):
    a = np.tanh(np_conv1d(p, x, 1, 1, 1, "conv."))  # [B, 8, 4]
    windows = a.reshape(a.shape[0], a.shape[1] // 2, 2, a.shape[2])  # max_pool(2) over steps
    gap = np.min(np.abs(windows[:, :, 0] - windows[:, :, 1]))
    assert gap > 1e-3, f"seq_conv_net: a max_pool window's two values are {gap:.3e} apart (tie)"
    return np_linear(p, windows.max(axis=2).mean(axis=1), "head.")


def np_lstm_net(p, x):
    h = np_gru(p, np_lstm(p, x, "rnn."), "gru1.")
    return np_linear(p, h[:, -1, :], "head.")


def np_cross_entropy(logits, targets):
    z = logits.reshape(-1, logits.shape[-1])
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(z.shape[0]), targets.reshape(-1)].mean()


# --------------------------------------------------------------------------
# Fixture specs
# --------------------------------------------------------------------------

BLOCK_DSL = """network! {
    struct SeqBlock {
        input: [5, 8],
        att: residual { layer_norm, attention(heads = 2, causal) },
        ff: residual { layer_norm, dense(16), gelu, dense(8) },
        layer_norm,
        head: dense(7),
    }
}"""

LSTM_NET_DSL = """network! {
    struct SeqLstmNet {
        input: [6, 4],
        rnn: lstm(5),
        gru1: gru(3),
        last,
        head: dense(2),
    }
}"""


def make_block():
    return nn.Sequential(OrderedDict([
        ("att", Residual(nn.LayerNorm(8), SelfAttention(8, 2, causal=True))),
        ("ff", Residual(nn.LayerNorm(8), nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))),
        ("2", nn.LayerNorm(8)),
        ("head", nn.Linear(8, 7)),
    ]))


TOKEN_BLOCK_DSL = """network! {
    struct SeqTokenBlock {
        input: tokens[5],
        embed: embedding(11 -> 8),
        pos: positional,
        att: residual { layer_norm, attention(heads = 2, causal) },
        ff: residual { layer_norm, dense(16), gelu, dense(8) },
        layer_norm,
        head: dense(11),
    }
}"""

CONV_NET_DSL = """network! {
    struct SeqConvNet {
        input: [8, 3],
        conv: conv1d(4, kernel = 3, padding = 1),
        tanh,
        max_pool(2),
        global_avg_pool,
        head: dense(3),
    }
}"""


def make_token_block():
    return nn.Sequential(OrderedDict([
        ("embed", nn.Embedding(11, 8)),
        ("pos", Positional(5, 8)),
        ("att", Residual(nn.LayerNorm(8), SelfAttention(8, 2, causal=True))),
        ("ff", Residual(nn.LayerNorm(8), nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))),
        ("4", nn.LayerNorm(8)),
        ("head", nn.Linear(8, 11)),
    ]))


def make_conv_net():
    return nn.Sequential(OrderedDict([
        ("conv", SeqConv1d(3, 4, 3, padding=1)),
        ("1", nn.Tanh()),
        ("2", MaxPool1dSteps(2)),
        ("3", GlobalAvgPool1d()),
        ("head", nn.Linear(4, 3)),
    ]))


def make_lstm_net():
    return nn.Sequential(OrderedDict([
        ("rnn", SeqLstm(4, 5, batch_first=True)),
        ("gru1", SeqGru(5, 3, batch_first=True)),
        ("2", Last()),
        ("head", nn.Linear(3, 2)),
    ]))


RNN_NAMES = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
MHA_NAMES = ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]

# Each: name, seed, module factory, steps, features, config, expected names,
# numpy forward (params dict, x) -> y, loss ("sum_r" or "cross_entropy").
FIXTURES = [
    {
        "name": "seq_lstm", "seed": 19001, "steps": 4, "features": 3,
        "module": lambda: SeqLstm(3, 5, batch_first=True),
        "config": {"layer": "lstm", "torch": "nn.LSTM(3, 5, batch_first=True)", "steps": 4, "features": 3,
                   "hidden": 5, "initial_state": "h0 = c0 = 0", "gates": "i, f, g, o"},
        "names": RNN_NAMES, "np": np_lstm,
    },
    {
        "name": "seq_gru", "seed": 19002, "steps": 4, "features": 3,
        "module": lambda: SeqGru(3, 5, batch_first=True),
        "config": {"layer": "gru", "torch": "nn.GRU(3, 5, batch_first=True)", "steps": 4, "features": 3,
                   "hidden": 5, "initial_state": "h0 = 0", "gates": "r, z, n"},
        "names": RNN_NAMES, "np": np_gru,
    },
    {
        "name": "seq_conv1d", "seed": 19003, "steps": 7, "features": 3,
        "module": lambda: SeqConv1d(3, 4, 3, stride=1, padding=0, dilation=1, bias=True),
        "config": {"layer": "conv1d", "torch": "nn.Conv1d(3, 4, 3, stride=1, padding=0, dilation=1, bias=True)",
                   "steps": 7, "features": 3, "out_steps": 5, "channels": 4, "kernel": 3, "stride": 1,
                   "padding": 0, "dilation": 1, "bias": True},
        "names": ["weight", "bias"], "np": lambda p, x: np_conv1d(p, x, 1, 0, 1),
    },
    {
        "name": "seq_conv1d_stride_pad_dil", "seed": 19004, "steps": 7, "features": 3,
        "module": lambda: SeqConv1d(3, 4, 3, stride=2, padding=2, dilation=2, bias=False),
        "config": {"layer": "conv1d", "torch": "nn.Conv1d(3, 4, 3, stride=2, padding=2, dilation=2, bias=False)",
                   "steps": 7, "features": 3, "out_steps": 4, "channels": 4, "kernel": 3, "stride": 2,
                   "padding": 2, "dilation": 2, "bias": False},
        "names": ["weight"], "np": lambda p, x: np_conv1d(p, x, 2, 2, 2),
    },
    {
        "name": "seq_attention", "seed": 19005, "steps": 5, "features": 6,
        "module": lambda: SelfAttention(6, 2, causal=False),
        "config": {"layer": "attention", "torch": "nn.MultiheadAttention(6, 2, batch_first=True)(x, x, x, "
                   "need_weights=False)", "steps": 5, "features": 6, "heads": 2, "causal": False},
        "names": MHA_NAMES, "np": lambda p, x: np_attention(p, x, 2, False),
    },
    {
        "name": "seq_attention_causal", "seed": 19006, "steps": 5, "features": 6,
        "module": lambda: SelfAttention(6, 2, causal=True),
        "config": {"layer": "attention", "torch": "nn.MultiheadAttention(6, 2, batch_first=True)(x, x, x, "
                   "attn_mask=nn.Transformer.generate_square_subsequent_mask(5), need_weights=False)",
                   "steps": 5, "features": 6, "heads": 2, "causal": True},
        "names": MHA_NAMES, "np": lambda p, x: np_attention(p, x, 2, True),
    },
    {
        "name": "seq_layer_norm", "seed": 19007, "steps": 4, "features": 5,
        "module": lambda: nn.LayerNorm(5),
        "config": {"layer": "layer_norm", "torch": "nn.LayerNorm(5)", "steps": 4, "features": 5, "eps": 1e-5},
        "names": ["weight", "bias"], "np": lambda p, x: np_layer_norm(p, x, 1e-5),
    },
    {
        "name": "seq_block", "seed": 19008, "steps": 5, "features": 8, "loss": "cross_entropy", "classes": 7,
        "module": make_block,
        "config": {"network": "pre-LN transformer block", "staticnet": BLOCK_DSL, "steps": 5, "features": 8,
                   "heads": 2, "causal": True, "classes": 7, "eps": 1e-5, "gelu": "exact (erf)",
                   "loss": "F.cross_entropy(y.reshape(-1, 7), targets.reshape(-1)) (mean over batch * steps)"},
        "names": ["att.body.0.weight", "att.body.0.bias"] + [f"att.body.1.{n}" for n in MHA_NAMES]
        + [f"ff.body.{j}.{n}" for j in (0, 1, 3) for n in ("weight", "bias")]
        + ["2.weight", "2.bias", "head.weight", "head.bias"],
        "np": np_block,
    },
    {
        "name": "seq_lstm_net", "seed": 19009, "steps": 6, "features": 4,
        "module": make_lstm_net,
        "config": {"network": "LSTM(4 -> 5) -> GRU(5 -> 3) -> last step -> Linear(3, 2)",
                   "staticnet": LSTM_NET_DSL, "steps": 6, "features": 4, "outputs": 2},
        "names": [f"rnn.{n}" for n in RNN_NAMES] + [f"gru1.{n}" for n in RNN_NAMES] + ["head.weight", "head.bias"],
        "np": np_lstm_net,
    },
    {
        "name": "seq_token_block", "seed": 19010, "steps": 5, "vocab": 11, "loss": "cross_entropy", "classes": 11,
        "module": make_token_block,
        "config": {"network": "token embedding + positional + pre-LN transformer block", "staticnet": TOKEN_BLOCK_DSL,
                   "steps": 5, "vocab": 11, "features": 8, "heads": 2, "causal": True, "classes": 11, "eps": 1e-5,
                   "gelu": "exact (erf)", "x": "token ids [B][T] (integers), so there is no dx",
                   "loss": "F.cross_entropy(y.reshape(-1, 11), targets.reshape(-1)) (mean over batch * steps)"},
        "names": ["embed.weight", "pos.weight", "att.body.0.weight", "att.body.0.bias"]
        + [f"att.body.1.{n}" for n in MHA_NAMES]
        + [f"ff.body.{j}.{n}" for j in (0, 1, 3) for n in ("weight", "bias")]
        + ["4.weight", "4.bias", "head.weight", "head.bias"],
        "np": np_token_block,
    },
    {
        "name": "seq_conv_net", "seed": 19011, "steps": 8, "features": 3,
        "module": make_conv_net,
        "config": {"network": "Conv1d(3, 4, 3, padding=1) -> tanh -> MaxPool1d(2) over steps -> mean over steps "
                   "-> Linear(4, 3)", "staticnet": CONV_NET_DSL, "steps": 8, "features": 3, "outputs": 3},
        "names": ["conv.weight", "conv.bias", "head.weight", "head.bias"],
        "np": np_conv_net,
    },
]


# --------------------------------------------------------------------------
# Building and writing
# --------------------------------------------------------------------------


def nested(t):
    return t.detach().to(torch.float64).tolist()


def build(spec):
    rng = np.random.default_rng(spec["seed"])
    torch.manual_seed(spec["seed"])  # only PyTorch's own init, overwritten below
    module = spec["module"]()
    module.train()  # no dropout anywhere (MultiheadAttention dropout = 0)
    names = [n for n, _ in module.named_parameters()]
    assert names == spec["names"], (spec["name"], names)
    assert not list(module.buffers()), spec["name"]
    with torch.no_grad():
        for _, prm in module.named_parameters():
            prm.copy_(torch.from_numpy(rng.standard_normal(tuple(prm.shape)) * PARAM_SCALE))
    tokens = "vocab" in spec
    if tokens:
        x_np = rng.integers(0, spec["vocab"], size=(BATCH, spec["steps"]))
        x = torch.from_numpy(x_np)
    else:
        x_np = rng.standard_normal((BATCH, spec["steps"], spec["features"]))
        x = torch.from_numpy(x_np).requires_grad_(True)
    y = module(x)
    params_np = {n: prm.detach().numpy().copy() for n, prm in module.named_parameters()}

    doc = OrderedDict()
    doc["config"] = dict(spec["config"], batch=BATCH, generator=GENERATOR)
    doc["x"] = x_np.tolist() if tokens else nested(x)
    doc["params"] = OrderedDict((n, nested(prm)) for n, prm in module.named_parameters())
    if spec.get("loss") == "cross_entropy":
        targets_np = rng.integers(0, spec["classes"], size=(BATCH, spec["steps"]))
        targets = torch.from_numpy(targets_np)

        def loss_fn(out):
            return F.cross_entropy(out.reshape(-1, spec["classes"]), targets.reshape(-1))

        doc["targets"] = targets_np.tolist()
    else:
        r_np = rng.standard_normal(tuple(y.shape))
        r = torch.from_numpy(r_np)

        def loss_fn(out):
            return (out * r).sum()

        doc["r"] = nested(r)
    loss = loss_fn(y)
    loss.backward()
    doc["y"] = nested(y)
    doc["loss"] = loss.item()
    doc["grads"] = OrderedDict((n, nested(prm.grad)) for n, prm in module.named_parameters())
    if not tokens:
        doc["dx"] = nested(x.grad)

    # Self-check 1: the numpy forward from the documented equations.
    y_np = spec["np"](params_np, x_np)
    err = np.max(np.abs(y_np - y.detach().numpy()))
    assert y_np.shape == tuple(y.shape) and err <= NP_TOL, (spec["name"], "numpy forward", err)
    if spec.get("loss") == "cross_entropy":
        loss_np = np_cross_entropy(y_np, targets_np)
    else:
        loss_np = float((y_np * r_np).sum())
    assert abs(loss_np - loss.item()) <= NP_TOL * max(1.0, abs(loss_np)), (spec["name"], "numpy loss")

    # Self-check 2: autograd against central finite differences, on the input
    # and every parameter at once.
    prms = [prm for _, prm in module.named_parameters()]

    def loss_of(xx, *ps):
        return loss_fn(torch.func.functional_call(module, dict(zip(names, ps)), (xx,)))

    inputs = [prm.detach().clone().requires_grad_(True) for prm in prms]
    if tokens:
        def loss_of_params(*ps):
            return loss_of(x, *ps)
        assert torch.autograd.gradcheck(loss_of_params, inputs, eps=1e-6, atol=1e-8, rtol=1e-6), spec["name"]
        return doc, {"np_err": err}
    inputs = [x.detach().clone().requires_grad_(True)] + inputs
    assert torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-8, rtol=1e-6), spec["name"]
    return doc, {"np_err": err}


def to_json(value, indent=0):
    """Dicts one key a line; a list of numbers on one line; deeper lists one
    row a line. Floats at full float64 precision (shortest round-trip repr)."""
    pad, pad_in = "  " * indent, "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad_in}{json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and isinstance(value[0], list):
        return "[\n" + ",\n".join(pad_in + to_json(v, indent + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def shape_of(v):
    return [len(v)] + shape_of(v[0]) if isinstance(v, list) else []


def write_fixtures():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for spec in FIXTURES:
        doc, info = build(spec)
        text = to_json(doc) + "\n"
        assert json.loads(text) == json.loads(json.dumps(doc)), spec["name"]  # exact round trip
        path = OUT_DIR / f"{spec['name']}.json"
        path.write_text(text)
        print(f"\n{path.relative_to(REPO_ROOT)} ({len(text.encode())} bytes): keys {', '.join(doc)}")
        print(f"  x {shape_of(doc['x'])} -> y {shape_of(doc['y'])}, loss {doc['loss']:.12g}")
        print("  params: " + ", ".join(f"{n}{shape_of(v)}" for n, v in doc["params"].items()))
        gnorm = math.sqrt(sum(float(np.sum(np.square(g))) for g in doc["grads"].values()))
        print(f"  |grads| {gnorm:.6g}; numpy forward max |diff| {info['np_err']:.2e}; gradcheck OK")


# --------------------------------------------------------------------------
# --check-load: a staticnet-saved safetensors into nn.LSTM / GRU / MultiheadAttention
# --------------------------------------------------------------------------


def check_load(st_path, json_path=None):
    """Loads the tensors of `st_path` whose names start with the JSON's
    `prefix` (default "") into the module named by `module` ("lstm", "gru",
    "attention"), strictly by name, runs it on the JSON's `x` [B][T][F] and
    asserts |torch - y| <= rtol * max(1, |torch|) elementwise (`rtol` from the
    JSON, default 1e-5). Sizes come from the tensor shapes; attention needs
    `heads` and `causal`. Returns the max error."""
    st_path = Path(st_path)
    json_path = Path(json_path) if json_path else st_path.with_suffix(".json")
    doc = json.loads(json_path.read_text())
    tensors = st_load_file(str(st_path))
    prefix = doc.get("prefix", "")
    sd = {n[len(prefix):]: t.to(torch.float64) for n, t in tensors.items() if n.startswith(prefix)}
    kind = doc["module"]
    if kind in ("lstm", "gru"):
        gates = 4 if kind == "lstm" else 3
        rows, feats = sd["weight_ih_l0"].shape
        assert rows % gates == 0, f"{st_path.name}: weight_ih_l0 has {rows} rows, not a multiple of {gates}"
        cls = SeqLstm if kind == "lstm" else SeqGru
        module = cls(feats, rows // gates, batch_first=True)
    elif kind == "attention":
        dim = sd["in_proj_weight"].shape[1]
        module = SelfAttention(dim, int(doc["heads"]), bool(doc["causal"]))
    else:
        raise AssertionError(f"{json_path.name}: unknown module {kind!r} (lstm, gru, attention)")
    expected = sorted(n for n, _ in module.named_parameters())
    assert sorted(sd) == expected, (
        f"{st_path.name} (prefix {prefix!r}): tensors {sorted(sd)}, nn module expects {expected}"
    )
    module.load_state_dict(sd, strict=True)
    module.eval()
    x = torch.tensor(doc["x"])
    want = torch.tensor(doc["y"])
    with torch.no_grad():
        got = module(x)
    assert got.shape == want.shape, f"{json_path.name}: y shape {list(want.shape)}, torch gives {list(got.shape)}"
    rtol = float(doc.get("rtol", CHECK_LOAD_RTOL))
    err = ((got - want).abs() / got.abs().clamp(min=1.0)).max().item()
    assert err <= rtol, f"{st_path.name}: outputs differ from {json_path.name}: max rel err {err:.3e} > {rtol:g}"
    dtypes = sorted({str(tensors[prefix + n].dtype).removeprefix("torch.") for n in expected})
    print(f"  {st_path.name}: {kind} {', '.join(f'{prefix}{n}{list(sd[n].shape)}' for n in expected)} "
          f"({'/'.join(dtypes)}) loads strictly into torch; outputs match {json_path.name}: "
          f"max rel err {err:.3e} <= {rtol:g}")
    return err


def self_test_check_load():
    """--check-load on files torch writes itself (float32, like staticnet's
    f32 models), in a temporary directory; a wrong output must be refused."""
    print("\ncheck-load self-test:")
    rng = np.random.default_rng(19100)
    cases = [
        ("lstm", "rnn.", SeqLstm(4, 5, batch_first=True), {}),
        ("gru", "", SeqGru(3, 2, batch_first=True), {}),
        ("attention", "att.body.1.", SelfAttention(6, 3, causal=True), {"heads": 3, "causal": True}),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for kind, prefix, module, extra in cases:
            with torch.no_grad():
                for prm in module.parameters():
                    prm.copy_(torch.from_numpy(rng.standard_normal(tuple(prm.shape)) * PARAM_SCALE).float().double())
            x = torch.from_numpy(rng.standard_normal((2, 5, module.in_proj_weight.shape[1] if kind == "attention"
                                                      else module.input_size)))
            with torch.no_grad():
                y = module(x)
            tensors = {prefix + n: t.float().contiguous() for n, t in module.state_dict().items()}
            if prefix:
                tensors["other.weight"] = torch.zeros(2, 2, dtype=torch.float32)  # other layers: ignored
            st = Path(tmp) / f"{kind}.safetensors"
            st_save_file(tensors, str(st))
            doc = {"module": kind, "prefix": prefix, **extra, "x": x.tolist(), "y": y.tolist()}
            (Path(tmp) / f"{kind}.json").write_text(json.dumps(doc))
            check_load(st)
            doc["y"][0][0][0] += 1e-3
            (Path(tmp) / f"{kind}.json").write_text(json.dumps(doc))
            try:
                check_load(st)
            except AssertionError:
                pass
            else:
                raise AssertionError(f"check-load self-test: a wrong {kind} output was accepted")
    print("  a perturbed output is refused: OK")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate staticnet's PyTorch sequence fixtures (tests/fixtures/seq_*.json).")
    ap.add_argument("--check-load", metavar="FILE.safetensors",
                    help="write nothing; load FILE (saved by staticnet) into nn.LSTM / nn.GRU / "
                    "nn.MultiheadAttention by name and compare outputs with its JSON")
    ap.add_argument("--json", metavar="FILE.json", help="the JSON for --check-load (default: FILE with .json)")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, numpy {np.__version__}, safetensors {safetensors.__version__}, "
          f"default dtype {torch.get_default_dtype()}")
    if args.check_load:
        check_load(args.check_load, args.json)
        return 0
    assert args.json is None, "--json goes with --check-load"
    write_fixtures()
    self_test_check_load()
    return 0


if __name__ == "__main__":
    sys.exit(main())
