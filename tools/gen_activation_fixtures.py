#!/usr/bin/env python3
"""Reference fixtures for staticnet's smooth activations (issue 20), from PyTorch.

Writes tests/fixtures/activations.json: for each activation, an input batch
``x``, PyTorch's output ``y``, an upstream gradient ``dy`` and PyTorch's input
gradient ``dx`` (from ``torch.autograd.grad``), all float64 on one thread.
tests/reference_activations.rs reads it through networks declared with
``network!``; no Python is needed to run the tests.

Run from the repo root (see tools/README.md for the venv):

    tools/.venv/bin/python tools/gen_activation_fixtures.py

It checks itself (AssertionError if not): ``torch.autograd.gradcheck`` accepts
each function (on the inputs with 0, ELU's kink, moved to 0.3), each output
agrees with the formula written out with ``math`` to 1e-12, and the written
JSON parses back to exactly the same values.

The inputs cover both sides of every kink and switch: ELU's and SELU's zero,
softplus's threshold 20 (inputs 19.5 and 25), large negative inputs (-30).
``log_softmax`` is over the last dimension: ``[B, F]`` for rank 1 and
``[B, T, F]`` (each step alone) for rank 2.
"""

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "tests" / "fixtures" / "activations.json"
GENERATOR = f"tools/gen_activation_fixtures.py, torch {torch.__version__.split('+')[0]}, float64"

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def softplus(v):
    return v if v > 20 else math.log1p(math.exp(v))


# name -> (torch function, the same written out per element or None for log_softmax)
ELEMENTWISE = {
    "silu": (F.silu, lambda v: v * sigmoid(v)),
    "elu": (F.elu, lambda v: v if v > 0 else math.expm1(v)),
    "elu_0_5": (lambda t: F.elu(t, alpha=0.5), lambda v: v if v > 0 else 0.5 * math.expm1(v)),
    "selu": (F.selu, lambda v: SELU_SCALE * (v if v > 0 else SELU_ALPHA * math.expm1(v))),
    "softplus": (F.softplus, softplus),
    "mish": (F.mish, lambda v: v * math.tanh(math.log1p(math.exp(v)))),
}


def inputs(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 2.0, size=shape)
    flat = x.reshape(-1)
    special = [0.0, -30.0, 19.5, 25.0, -1e-3, 1e-3, 5.0, -5.0]
    flat[: len(special)] = special
    return torch.tensor(x, requires_grad=True)


def case(fn, x, seed):
    rng = np.random.default_rng(seed)
    y = fn(x)
    dy = torch.tensor(rng.normal(0.0, 1.0, size=tuple(x.shape)))
    (dx,) = torch.autograd.grad(y, x, dy)
    # Finite differences straddle ELU's and SELU's kink at exactly 0: check beside it.
    away = torch.where(x.detach() == 0.0, torch.tensor(0.3), x.detach())
    assert torch.autograd.gradcheck(fn, (away.clone().requires_grad_(True),))
    return {"x": x.tolist(), "y": y.tolist(), "dy": dy.tolist(), "dx": dx.tolist()}


def main():
    out = {"generator": GENERATOR}
    for k, (name, (fn, scalar)) in enumerate(ELEMENTWISE.items()):
        x = inputs((4, 8), 100 + k)
        out[name] = case(fn, x, 200 + k)
        got = np.array(out[name]["y"]).reshape(-1)
        want = np.array([scalar(v) for v in x.detach().numpy().reshape(-1)])
        assert np.allclose(got, want, rtol=1e-12, atol=1e-12), name
    # log_softmax over the features of a sample, and over each step's features.
    for name, shape, seed in (("log_softmax", (4, 7), 300), ("log_softmax_steps", (3, 4, 5), 301)):
        x = inputs(shape, seed)
        out[name] = case(lambda t: F.log_softmax(t, dim=-1), x, seed + 100)
        v = x.detach().numpy()
        m = v.max(axis=-1, keepdims=True)
        want = v - m - np.log(np.exp(v - m).sum(axis=-1, keepdims=True))
        assert np.allclose(np.array(out[name]["y"]), want, rtol=1e-12, atol=1e-12), name
    text = json.dumps(out, indent=1)
    assert json.loads(text) == out
    OUT.write_text(text + "\n")
    print(f"wrote {OUT.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
