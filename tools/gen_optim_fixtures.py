#!/usr/bin/env python3
"""Reference fixtures for staticnet's optimizers (issue 20), from PyTorch.

Every case runs the real ``torch.optim`` class (``RMSprop``, ``Adagrad``, ``Adadelta``,
and ``SGD``/``Adam``/``AdamW`` with parameter groups) in float64 with ``foreach=False``
(the single-tensor code path whose arithmetic is written out in torch's sources) on two
parameters named as a staticnet dense layer's: ``fc.weight`` [2, 3] and ``fc.bias`` [2].
The gradient of each step comes from ``loss.backward()`` of a fixed function of the
weights; the fixture records, step by step, the gradients handed to the optimizer and
the parameters after the step, plus the final optimizer state under PyTorch's slot names.
``tests/optimizers.rs`` replays the gradients and compares to 1e-10.

Groups: when a case has ``groups``, torch gets two parameter groups, ``fc.weight`` with the
optimizer's settings and ``fc.bias`` with ``weight_decay = 0`` and ``lr`` scaled by
``lr_scale`` (what ``ParamGroup`` expresses in staticnet).

Run from the repo root (see tools/README.md for the venv):

    tools/.venv/bin/python tools/gen_optim_fixtures.py      # writes tests/fixtures/optim.json

Checks itself: the written JSON parses back to exactly the same values.
"""

import json
import math

import torch

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

STEPS = 6

CASES = [
    ("rmsprop", "RMSprop", {"lr": 0.01}, None),
    ("rmsprop_momentum", "RMSprop", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1}, None),
    ("rmsprop_centered", "RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "centered": True}, None),
    (
        "rmsprop_centered_momentum",
        "RMSprop",
        {"lr": 0.02, "alpha": 0.95, "momentum": 0.5, "centered": True, "weight_decay": 0.05},
        None,
    ),
    ("adagrad", "Adagrad", {"lr": 0.1}, None),
    (
        "adagrad_all",
        "Adagrad",
        {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.2, "eps": 1e-8},
        None,
    ),
    ("adadelta", "Adadelta", {"lr": 1.0}, None),
    ("adadelta_all", "Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.1}, None),
    ("sgd_groups", "SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}, 0.5),
    ("adam_groups", "Adam", {"lr": 0.01, "weight_decay": 0.1}, 0.5),
    ("adamw_groups", "AdamW", {"lr": 0.01, "weight_decay": 0.1}, 0.5),
    ("rmsprop_groups", "RMSprop", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1}, 0.5),
    ("adagrad_groups", "Adagrad", {"lr": 0.1, "weight_decay": 0.1}, 0.5),
    ("adadelta_groups", "Adadelta", {"lr": 1.0, "weight_decay": 0.1}, 0.5),
]

# PyTorch's state names -> staticnet's slot names (the same but for SGD's, which is identical too).
SLOTS = {
    "RMSprop": ["square_avg", "momentum_buffer", "grad_avg"],
    "Adagrad": ["sum"],
    "Adadelta": ["square_avg", "acc_delta"],
    "SGD": ["momentum_buffer"],
    "Adam": ["exp_avg", "exp_avg_sq"],
    "AdamW": ["exp_avg", "exp_avg_sq"],
}


def loss_of(weight, bias):
    """A fixed smooth function of the weights whose gradients change every step."""
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
    y = torch.tanh(x @ weight.T + bias)
    return (y * torch.tensor([[1.0, -2.0], [0.5, 3.0]])).sum() + 0.3 * (weight**2).sum()


def run(kind, settings, lr_scale):
    weight = torch.tensor([[0.2, -0.4, 0.6], [0.8, -0.1, 0.3]], requires_grad=True)
    bias = torch.tensor([0.05, -0.25], requires_grad=True)
    initial = {"fc.weight": weight.detach().flatten().tolist(), "fc.bias": bias.detach().tolist()}
    cls = getattr(torch.optim, kind)
    if lr_scale is None:
        opt = cls([weight, bias], foreach=False, **settings)
    else:
        groups = [
            {"params": [weight]},
            {"params": [bias], "weight_decay": 0.0, "lr": settings["lr"] * lr_scale},
        ]
        opt = cls(groups, foreach=False, **settings)
    steps = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss_of(weight, bias).backward()
        grads = {"fc.weight": weight.grad.flatten().tolist(), "fc.bias": bias.grad.tolist()}
        opt.step()
        after = {"fc.weight": weight.detach().flatten().tolist(), "fc.bias": bias.detach().tolist()}
        steps.append({"grads": grads, "params": after})
    state = {}
    for slot in SLOTS[kind]:
        values = [opt.state[p].get(slot) for p in (weight, bias)]
        if all(v is not None for v in values):
            state[slot] = [v.flatten().tolist() for v in values]
    return {"initial": initial, "steps": steps, "state": state}


def main():
    out = {}
    for name, kind, settings, lr_scale in CASES:
        case = run(kind, settings, lr_scale)
        case.update(optimizer=kind, settings=settings, lr_scale=lr_scale)
        for step in case["steps"]:
            assert all(math.isfinite(v) for vs in step["params"].values() for v in vs)
        out[name] = case
    text = json.dumps(out, indent=1)
    assert json.loads(text) == out
    with open("tests/fixtures/optim.json", "w") as f:
        f.write(text + "\n")
    print(f"wrote tests/fixtures/optim.json ({len(out)} cases, torch {torch.__version__})")


if __name__ == "__main__":
    main()
