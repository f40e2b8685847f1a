#!/usr/bin/env python3
"""Generate reference fixtures for staticnet's Rust tests, using JAX.

JAX is used as an *independent* reference: the forward pass is written in
jax.numpy, and every gradient comes from ``jax.value_and_grad`` (never derived
by hand). Everything is computed in float64.

Run from the repo root:

    tools/.venv/bin/python tools/gen_fixtures.py

It writes one JSON file per fixture into ``tests/fixtures/`` (see
``tools/README.md`` for the format). The output is deterministic: data and
weights come from numpy RNGs with fixed seeds.

The script checks itself and fails loudly (AssertionError) if:
  * a relu / leaky_relu pre-activation lies within KINK_MARGIN of 0, a
    relu / leaky_relu layer sees only one sign, or one of its units is
    negative for the whole batch (the weights are then redrawn; the assert
    fires only if redrawing keeps failing);
  * an independent numpy forward pass disagrees with the JAX one;
  * ``jax.grad`` disagrees with a central finite difference on sampled entries;
  * the written JSON does not round-trip to exactly the same float64 values.
"""

import json
import math
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "tests" / "fixtures"

# Pre-activations at a relu/leaky_relu kink must be at least this far from 0.
# (The requirement is 1e-6; a wider margin keeps finite differences with
# steps up to ~1e-4 on the Rust side meaningful too.)
KINK_MARGIN = 1e-3
MAX_RESAMPLES = 1000

FD_EPS = 1e-6  # central finite-difference step for the self-check
FD_RTOL = 1e-6
FD_ATOL = 1e-9

# --------------------------------------------------------------------------
# Layer specs
# --------------------------------------------------------------------------


def dense(out, name=None, bias=True):
    layer = {"kind": "dense"}
    if name is not None:
        layer["name"] = name
    layer["out"] = out
    layer["bias"] = bias
    return layer


def act(kind, **kw):
    layer = {"kind": kind}
    layer.update(kw)
    return layer


ACTIVATIONS = {"relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "identity"}


def layer_prefix(index, layer):
    """PyTorch state_dict prefix: explicit name, else index in the full list."""
    return layer.get("name", str(index))


def param_shapes(input_size, layers):
    """Ordered list of (param_name, shape) in layer order; also the output width."""
    shapes = []
    width = input_size
    for i, layer in enumerate(layers):
        if layer["kind"] == "dense":
            prefix = layer_prefix(i, layer)
            shapes.append((f"{prefix}.weight", (layer["out"], width)))
            if layer["bias"]:
                shapes.append((f"{prefix}.bias", (layer["out"],)))
            width = layer["out"]
        else:
            assert layer["kind"] in ACTIVATIONS, layer
    return shapes, width


# --------------------------------------------------------------------------
# JAX forward pass + losses (the reference)
# --------------------------------------------------------------------------


def jax_activation(layer, x):
    kind = layer["kind"]
    if kind == "relu":
        return jnp.maximum(x, 0.0)
    if kind == "leaky_relu":
        return jnp.where(x > 0, x, layer["alpha"] * x)
    if kind == "sigmoid":
        return jax.nn.sigmoid(x)
    if kind == "tanh":
        return jnp.tanh(x)
    if kind == "gelu":
        return jax.nn.gelu(x, approximate=False)  # exact erf form
    if kind == "softmax":
        return jax.nn.softmax(x, axis=-1)
    if kind == "identity":
        return x
    raise ValueError(kind)


def jax_forward(layers, params, x, record=None):
    """params: dict name -> array. If record is a list, appends
    (layer_index, pre_activation) for each relu/leaky_relu layer."""
    h = x
    for i, layer in enumerate(layers):
        if layer["kind"] == "dense":
            prefix = layer_prefix(i, layer)
            h = h @ params[f"{prefix}.weight"].T
            if layer["bias"]:
                h = h + params[f"{prefix}.bias"]
        else:
            if record is not None and layer["kind"] in ("relu", "leaky_relu"):
                record.append((i, h))
            h = jax_activation(layer, h)
    return h


def jax_loss(loss, out, labels=None, target=None):
    if loss == "softmax_cross_entropy":
        logp = jax.nn.log_softmax(out, axis=-1)
        picked = jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]
        return -jnp.mean(picked)
    if loss == "mse":
        return jnp.mean((out - target) ** 2)
    if loss == "bce_with_logits":
        z, t = out, target
        return jnp.mean(jnp.maximum(z, 0.0) - z * t + jnp.log1p(jnp.exp(-jnp.abs(z))))
    raise ValueError(loss)


# --------------------------------------------------------------------------
# Independent numpy forward pass (cross-check of conventions, e.g. exact gelu)
# --------------------------------------------------------------------------

_np_erf = np.vectorize(math.erf, otypes=[np.float64])


def np_forward(layers, params, x):
    h = np.asarray(x, dtype=np.float64)
    for i, layer in enumerate(layers):
        kind = layer["kind"]
        if kind == "dense":
            prefix = layer_prefix(i, layer)
            w = params[f"{prefix}.weight"]
            # y[b, o] = sum_i x[b, i] * w[o, i] + bias[o]
            h = np.einsum("bi,oi->bo", h, w)
            if layer["bias"]:
                h = h + params[f"{prefix}.bias"][None, :]
        elif kind == "relu":
            h = np.where(h > 0, h, 0.0)
        elif kind == "leaky_relu":
            h = np.where(h > 0, h, layer["alpha"] * h)
        elif kind == "sigmoid":
            h = 1.0 / (1.0 + np.exp(-h))
        elif kind == "tanh":
            h = np.tanh(h)
        elif kind == "gelu":
            h = 0.5 * h * (1.0 + _np_erf(h / math.sqrt(2.0)))
        elif kind == "softmax":
            e = np.exp(h - h.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
        elif kind == "identity":
            pass
        else:
            raise ValueError(kind)
    return h


def np_loss(loss, out, labels=None, target=None):
    if loss == "softmax_cross_entropy":
        m = out.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(out - m).sum(axis=1))
        return float(np.mean(lse - out[np.arange(out.shape[0]), labels]))
    if loss == "mse":
        return float(np.mean((out - target) ** 2))
    if loss == "bce_with_logits":
        z, t = out, target
        return float(np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))))
    raise ValueError(loss)


# --------------------------------------------------------------------------
# Fixture construction
# --------------------------------------------------------------------------


def sample_params(rng, shapes):
    params = {}
    for name, shape in shapes:
        if name.endswith(".weight"):
            fan_in = shape[1]
            params[name] = rng.normal(0.0, 1.0 / math.sqrt(fan_in), size=shape)
        else:
            params[name] = rng.normal(0.0, 0.1, size=shape)
    return params


def kink_report(layers, params, x):
    """Returns list of (layer_index, min |pre|, n_neg, n_pos) for relu/leaky."""
    rec = []
    jax_forward(layers, {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(x), rec)
    out = []
    for i, pre in rec:
        pre = np.asarray(pre)
        # Units that are negative for the whole batch ("dead" for relu).
        dead = int(np.sum(np.all(pre < 0, axis=0)))
        out.append((i, float(np.min(np.abs(pre))), int(np.sum(pre < 0)), int(np.sum(pre > 0)), dead))
    return out


def kinks_ok(report):
    """No pre-activation near a kink, both signs present, and every unit
    positive for at least one sample (so no weight gradient is trivially 0)."""
    return all(m > KINK_MARGIN and neg > 0 and pos > 0 and dead == 0 for _, m, neg, pos, dead in report)


def tensor(a):
    a = np.asarray(a, dtype=np.float64)
    assert np.all(np.isfinite(a))
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def finite_difference_check(f, params, x, rng, name):
    """Compare jax.grad of f(params, x) with central differences on a few
    entries of every parameter and of the input."""
    g_params, g_x = jax.grad(f, argnums=(0, 1))(params, x)
    checked = 0
    worst = 0.0

    def check(get_base, set_val, grad_arr, label):
        nonlocal checked, worst
        base = np.asarray(get_base())
        flat_idx = rng.choice(base.size, size=min(3, base.size), replace=False)
        for fi in flat_idx:
            idx = tuple(int(i) for i in np.unravel_index(fi, base.shape))
            plus = base.copy()
            plus[idx] += FD_EPS
            minus = base.copy()
            minus[idx] -= FD_EPS
            fd = (float(set_val(plus)) - float(set_val(minus))) / (2 * FD_EPS)
            an = float(np.asarray(grad_arr)[idx])
            err = abs(fd - an)
            tol = FD_ATOL + FD_RTOL * max(abs(fd), abs(an))
            worst = max(worst, err / tol)
            assert err <= tol, (
                f"{name}: finite-difference mismatch at {label}{list(idx)}: "
                f"jax.grad={an!r} fd={fd!r} |diff|={err:.3e} tol={tol:.3e}"
            )
            checked += 1

    for pname in params:
        def set_p(v, pname=pname):
            p2 = dict(params)
            p2[pname] = jnp.asarray(v)
            return f(p2, x)

        check(lambda pname=pname: params[pname], set_p, g_params[pname], pname)
    check(lambda: x, lambda v: f(params, jnp.asarray(v)), g_x, "input")
    return checked, worst


def build_fixture(spec):
    name = spec["name"]
    layers = spec["layers"]
    input_size = spec["input_size"]
    batch = spec["batch"]
    loss = spec["loss"]
    shapes, out_width = param_shapes(input_size, layers)

    rng = np.random.default_rng(spec["seed"])

    # Data first (fixed), then resample weights until no relu/leaky kink is hit.
    x = rng.standard_normal((batch, input_size))
    labels = None
    target = None
    if loss == "softmax_cross_entropy":
        labels = rng.integers(0, out_width, size=batch)
    elif loss == "mse":
        target = rng.standard_normal((batch, out_width))
    elif loss == "bce_with_logits":
        target = spec["make_target"](rng, (batch, out_width))
    else:
        raise ValueError(loss)

    for attempt in range(MAX_RESAMPLES):
        params_np = sample_params(rng, shapes)
        report = kink_report(layers, params_np, x)
        if kinks_ok(report):
            break
    else:
        raise AssertionError(f"{name}: could not avoid relu/leaky kinks in {MAX_RESAMPLES} tries")

    params = {k: jnp.asarray(v) for k, v in params_np.items()}
    xj = jnp.asarray(x)
    labels_j = None if labels is None else jnp.asarray(labels)
    target_j = None if target is None else jnp.asarray(target)

    def f(p, xx):
        return jax_loss(loss, jax_forward(layers, p, xx), labels=labels_j, target=target_j)

    out = np.asarray(jax_forward(layers, params, xj))
    loss_value, (g_params, g_x) = jax.value_and_grad(f, argnums=(0, 1))(params, xj)
    loss_value = float(loss_value)

    # Independent numpy cross-check of forward + loss conventions.
    out_np = np_forward(layers, params_np, x)
    assert out.shape == (batch, out_width)
    assert np.allclose(out, out_np, rtol=1e-12, atol=1e-13), f"{name}: jax/numpy forward mismatch"
    loss_np = np_loss(loss, out_np, labels=labels, target=target)
    assert math.isclose(loss_value, loss_np, rel_tol=1e-12, abs_tol=1e-13), (
        f"{name}: jax/numpy loss mismatch {loss_value!r} vs {loss_np!r}"
    )

    fd_rng = np.random.default_rng(spec["seed"] + 1_000_000)
    n_fd, worst = finite_difference_check(f, params, xj, fd_rng, name)

    doc = {}
    doc["description"] = spec["description"]
    doc["generator"] = f"tools/gen_fixtures.py, jax {jax.__version__}, float64"
    doc["input_size"] = input_size
    doc["layers"] = layers
    doc["loss"] = loss
    doc["batch"] = batch
    doc["params"] = {pname: tensor(params_np[pname]) for pname, _ in shapes}
    doc["input"] = tensor(x)
    if labels is not None:
        doc["labels"] = [int(v) for v in labels]
    if target is not None:
        doc["target"] = tensor(target)
    doc["output"] = tensor(out)
    doc["loss_value"] = loss_value
    doc["grads"] = {pname: tensor(g_params[pname]) for pname, _ in shapes}
    doc["input_grad"] = tensor(g_x)

    info = {
        "attempts": attempt + 1,
        "kinks": report,
        "fd_checked": n_fd,
        "fd_worst_ratio": worst,
    }
    return doc, info


# --------------------------------------------------------------------------
# JSON writing: pretty, but each numeric array on one line
# --------------------------------------------------------------------------


def to_json(value, indent=0):
    pad = "  " * indent
    pad_in = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad_in}{json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return json.dumps(value, allow_nan=False)
        if all(isinstance(v, dict) and len(json.dumps(v)) < 80 for v in value):
            return "[\n" + ",\n".join(pad_in + json.dumps(v) for v in value) + "\n" + pad + "]"
        return "[\n" + ",\n".join(pad_in + to_json(v, indent + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def bce_targets_mixed(rng, shape):
    """Mostly hard 0/1 targets, plus some soft ones (0.3, 0.75)."""
    t = rng.integers(0, 2, size=shape).astype(np.float64)
    t[0, 0] = 0.3
    t[2, 1] = 0.75
    t[3, 0] = 0.3
    return t


FIXTURES = [
    {
        "name": "mlp_relu_ce",
        "seed": 1001,
        "description": "MLP 4 -> fc1 dense(5) -> relu -> fc2 dense(3); softmax cross-entropy "
        "(mean over batch) on integer labels; batch 6.",
        "input_size": 4,
        "layers": [dense(5, "fc1"), act("relu"), dense(3, "fc2")],
        "loss": "softmax_cross_entropy",
        "batch": 6,
    },
    {
        "name": "mlp_acts_mse",
        "seed": 2002,
        "description": "Unnamed sequential net over every activation: 3 -> dense(4) -> tanh -> "
        "dense(4) -> sigmoid -> dense(4) -> gelu (exact erf) -> dense(4) -> leaky_relu(0.1) -> "
        "dense(3, no bias) -> softmax -> identity; MSE (mean over all elements) against a random "
        "target; batch 5. Parameter names are layer indices (PyTorch nn.Sequential style).",
        "input_size": 3,
        "layers": [
            dense(4),
            act("tanh"),
            dense(4),
            act("sigmoid"),
            dense(4),
            act("gelu"),
            dense(4),
            act("leaky_relu", alpha=0.1),
            dense(3, bias=False),
            act("softmax"),
            act("identity"),
        ],
        "loss": "mse",
        "batch": 5,
    },
    {
        "name": "mlp_bce",
        "seed": 3003,
        "description": "MLP 3 -> hidden dense(4) -> relu -> out dense(2); BCE with logits (mean "
        "over all elements); targets mostly 0/1 with some soft values (0.3, 0.75); batch 4.",
        "input_size": 3,
        "layers": [dense(4, "hidden"), act("relu"), dense(2, "out")],
        "loss": "bce_with_logits",
        "make_target": bce_targets_mixed,
        "batch": 4,
    },
    {
        "name": "deep_tanh_ce",
        "seed": 4004,
        "description": "Deeper MLP 8 -> fc1 dense(16) -> tanh -> fc2 dense(16) -> leaky_relu(0.2) -> "
        "fc3 dense(16) -> gelu (exact erf) -> head dense(10); softmax cross-entropy (mean over "
        "batch); batch 7.",
        "input_size": 8,
        "layers": [
            dense(16, "fc1"),
            act("tanh"),
            dense(16, "fc2"),
            act("leaky_relu", alpha=0.2),
            dense(16, "fc3"),
            act("gelu"),
            dense(10, "head"),
        ],
        "loss": "softmax_cross_entropy",
        "batch": 7,
    },
]


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"jax {jax.__version__}, numpy {np.__version__}, x64={jax.config.jax_enable_x64}")
    for spec in FIXTURES:
        doc, info = build_fixture(spec)
        text = to_json(doc) + "\n"
        # Round-trip check: the file must parse back to exactly the same values.
        assert json.loads(text) == json.loads(json.dumps(doc)), spec["name"]
        path = OUT_DIR / f"{spec['name']}.json"
        path.write_text(text)

        gnorm = math.sqrt(sum(sum(v * v for v in g["data"]) for g in doc["grads"].values()))
        print(f"\n{path.relative_to(REPO_ROOT)}")
        shapes = ", ".join(f"{k}{v['shape']}" for k, v in doc["params"].items())
        print(f"  params: {shapes}")
        print(f"  output {doc['output']['shape']}, loss {doc['loss_value']:.12g}, |grad| {gnorm:.6g}")
        print(
            f"  weight draws: {info['attempts']}; fd-checked {info['fd_checked']} entries, "
            f"worst |diff|/tol = {info['fd_worst_ratio']:.3f}"
        )
        for i, m, neg, pos, dead in info["kinks"]:
            print(
                f"  layer {i} ({doc['layers'][i]['kind']}): min |pre| {m:.3e}, "
                f"{neg} neg / {pos} pos, {dead} units negative on the whole batch"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
