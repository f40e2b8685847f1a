#!/usr/bin/env python3
"""Reference fixtures for staticnet's learning-rate schedules (issue 20), from PyTorch.

Each case steps a real ``torch.optim.lr_scheduler`` on an SGD optimizer with base rate
``lr`` and records the rate of every step (``optimizer.param_groups[0]["lr"]`` before each
``scheduler.step()``), as staticnet's ``Schedule`` should give it:

* per epoch: ``StepLR``, ``ExponentialLR``;
* per step: ``LinearLR`` (warm-up), ``SequentialLR(LinearLR, CosineAnnealingLR)`` (warm-up then
  cosine), ``OneCycleLR`` (two phases, cosine, ``cycle_momentum=False``);
* ``ReduceLROnPlateau`` stepped with a fixed sequence of metric values (``metrics``), the rate
  recorded after each ``step(metric)``.

Run from the repo root (see tools/README.md for the venv):

    tools/.venv/bin/python tools/gen_schedule_fixtures.py   # writes tests/fixtures/schedules.json

Checks itself: the written JSON parses back to exactly the same values.
"""

import json

import torch
from torch.optim import lr_scheduler as S

LR = 0.1


def optimizer():
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)


def rates(make, n):
    opt = optimizer()
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def plateau(metrics, **kw):
    opt = optimizer()
    sched = S.ReduceLROnPlateau(opt, **kw)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(opt.param_groups[0]["lr"])
    return out


def main():
    cases = {
        "step": {"every": 3, "factor": 0.5, "rates": rates(lambda o: S.StepLR(o, 3, 0.5), 10)},
        "exponential": {"gamma": 0.9, "rates": rates(lambda o: S.ExponentialLR(o, 0.9), 10)},
        "linear_warmup": {
            "steps": 5,
            "start_factor": 0.2,
            "rates": rates(lambda o: S.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=5), 9),
        },
        "warmup_cosine": {
            "warmup_steps": 4,
            "total_steps": 14,
            "start_factor": 0.1,
            "min_factor": 0.05,
            "rates": rates(
                lambda o: S.SequentialLR(
                    o,
                    [
                        S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=4),
                        S.CosineAnnealingLR(o, T_max=10, eta_min=LR * 0.05),
                    ],
                    milestones=[4],
                ),
                14,
            ),
        },
        "one_cycle": {
            "total_steps": 20,
            "pct_start": 0.3,
            "div_factor": 25.0,
            "final_div_factor": 1e4,
            "rates": rates(
                lambda o: S.OneCycleLR(o, max_lr=LR, total_steps=20, cycle_momentum=False), 20
            ),
        },
        "one_cycle_custom": {
            "total_steps": 11,
            "pct_start": 0.5,
            "div_factor": 10.0,
            "final_div_factor": 100.0,
            "rates": rates(
                lambda o: S.OneCycleLR(
                    o,
                    max_lr=LR,
                    total_steps=11,
                    pct_start=0.5,
                    div_factor=10.0,
                    final_div_factor=100.0,
                    cycle_momentum=False,
                ),
                11,
            ),
        },
    }
    losses = [1.0, 0.8, 0.8, 0.79995, 0.9, 0.7, 0.7, 0.71, 0.72, 0.73, 0.5, 0.6, 0.6, 0.6, 0.6]
    accuracies = [0.5, 0.6, 0.6, 0.59, 0.7, 0.7, 0.7, 0.7, 0.8, 0.8]
    cases["plateau_min"] = {
        "mode": "min",
        "factor": 0.5,
        "patience": 1,
        "threshold": 1e-4,
        "cooldown": 1,
        "min_lr": 0.01,
        "metrics": losses,
        "rates": plateau(losses, mode="min", factor=0.5, patience=1, threshold=1e-4, cooldown=1, min_lr=0.01),
    }
    cases["plateau_max"] = {
        "mode": "max",
        "factor": 0.1,
        "patience": 2,
        "threshold": 1e-4,
        "cooldown": 0,
        "min_lr": 0.0,
        "metrics": accuracies,
        "rates": plateau(accuracies, mode="max", factor=0.1, patience=2),
    }
    text = json.dumps({"lr": LR, "cases": cases}, indent=1)
    assert json.loads(text) == {"lr": LR, "cases": cases}
    with open("tests/fixtures/schedules.json", "w") as f:
        f.write(text + "\n")
    print(f"wrote tests/fixtures/schedules.json ({len(cases)} cases, torch {torch.__version__})")


if __name__ == "__main__":
    main()
