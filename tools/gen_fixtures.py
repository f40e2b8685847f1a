#!/usr/bin/env python3
"""Generate reference fixtures for staticnet's Rust tests, using JAX.

JAX is used as an *independent* reference: the forward pass is written in
jax.numpy / jax.lax, and every gradient comes from ``jax.value_and_grad``
(never derived by hand). Everything is computed in float64.

Run from the repo root:

    tools/.venv/bin/python tools/gen_fixtures.py                  # write + check
    tools/.venv/bin/python tools/gen_fixtures.py --check-interop  # check only

It writes one JSON file per fixture into ``tests/fixtures/`` (see
``tools/README.md`` for the format), plus the PyTorch-style safetensors
interop pair ``jax_cnn.safetensors`` / ``jax_cnn.json``, and then runs the
interop check: ``jax_cnn.*`` and, if present, ``staticnet_cnn.safetensors`` /
``staticnet_cnn.json`` (saved by staticnet's Rust tests) must hold exactly the
PyTorch state_dict names, dtypes and shapes, and the network rebuilt in JAX
from the file must reproduce the JSON's outputs. The output is deterministic:
data and weights come from numpy RNGs with fixed seeds.

Two families of fixtures share the same machinery:
  * dense MLPs on rank-1 samples (``input_size``);
  * convolutional nets on rank-3 [C, H, W] samples (``input_shape``) with
    conv2d, max/avg/global-avg pooling, flatten, batch_norm (train / eval
    mode, running-stat buffers) and layer_norm, all with PyTorch semantics.
Either may use composite layers, which hold layer lists of their own:
``residual`` (identity or projection skip), ``parallel`` (branches combined
by channel/feature concat or by sum) and ``network`` (a whole network used as
one layer). Every walk over the layers (shapes and parameter names, the JAX
forward, the numpy forward, the kink / tie report) recurses into them.

The script checks itself and fails loudly (AssertionError) if:
  * a relu / leaky_relu pre-activation lies within KINK_MARGIN of 0, a
    relu / leaky_relu layer sees only one sign, or one of its units
    (features, or channels for rank-3 activations) is negative for the whole
    batch; or a max_pool window has a (near-)tie, i.e. its two largest values
    are less than KINK_MARGIN apart (the weights are then redrawn; the assert
    fires only if redrawing keeps failing);
  * an independent numpy forward pass (explicit-loop conv2d and pools, own
    batch_norm / layer_norm, running-stat update) disagrees with the JAX one;
  * ``jax.grad`` disagrees with a central finite difference on sampled entries;
  * the written JSON does not round-trip to exactly the same float64 values;
  * a CNN safetensors file has other tensor names, dtypes or shapes than the
    PyTorch state_dict, a malformed container, or weights that do not
    reproduce the outputs in its JSON (jax_cnn exactly, staticnet_cnn to
    1e-5 relative).
"""

import argparse
import json
import math
import struct
import sys
from pathlib import Path

import jax
import safetensors
from safetensors.numpy import load_file as st_load_file
from safetensors.numpy import save_file as st_save_file

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "tests" / "fixtures"

# Pre-activations at a relu/leaky_relu kink must be at least this far from 0,
# and the two largest values of every max_pool window at least this far apart.
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


def _pair(v):
    return [v, v] if isinstance(v, int) else [int(v[0]), int(v[1])]


def conv2d(out_channels, kernel, name=None, stride=1, padding=0, dilation=1, bias=True):
    layer = {"kind": "conv2d"}
    if name is not None:
        layer["name"] = name
    layer["out_channels"] = out_channels
    layer["kernel"] = _pair(kernel)
    layer["stride"] = _pair(stride)
    layer["padding"] = _pair(padding)
    layer["dilation"] = _pair(dilation)
    layer["bias"] = bias
    return layer


def max_pool(kernel, stride=None):
    return {"kind": "max_pool", "kernel": kernel, "stride": kernel if stride is None else stride}


def avg_pool(kernel, stride=None):
    return {"kind": "avg_pool", "kernel": kernel, "stride": kernel if stride is None else stride}


def batch_norm(name=None, eps=1e-5, momentum=0.1):
    layer = {"kind": "batch_norm"}
    if name is not None:
        layer["name"] = name
    layer["eps"] = eps
    layer["momentum"] = momentum
    return layer


def layer_norm(name=None, eps=1e-5):
    layer = {"kind": "layer_norm"}
    if name is not None:
        layer["name"] = name
    layer["eps"] = eps
    return layer


def act(kind, **kw):
    layer = {"kind": kind}
    layer.update(kw)
    return layer


ACTIVATIONS = {"relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "identity"}

# Composite layers. Each holds layer lists of its own; the parameters of an
# inner layer are named <composite prefix>.<sub-path>.<inner prefix>, where the
# inner prefix is again the layer's name or its 0-based index in its own list
# (counting activations):
#   residual  -> <p>.body.<j>.*, then (if any) <p>.projection.*
#   parallel  -> <p>.<branch>.<j>.*
#   network   -> <p>.<inner prefix>.*   (a whole network used as one layer)


def residual(body, name=None, projection=None):
    """output = skip(x) + body(x); skip is the identity, or `projection` (a
    dense or conv2d layer spec without a name; its parameters are
    <name>.projection.*)."""
    layer = {"kind": "residual"}
    if name is not None:
        layer["name"] = name
    if projection is not None:
        assert projection["kind"] in ("dense", "conv2d") and "name" not in projection, projection
    layer["projection"] = projection
    layer["body"] = list(body)
    return layer


def parallel(combine, branches, name=None):
    """Runs every branch on the same input; combine "concat" (along the
    feature / channel axis, branch 0 first) or "add" (elementwise sum)."""
    assert combine in ("concat", "add"), combine
    layer = {"kind": "parallel"}
    if name is not None:
        layer["name"] = name
    layer["combine"] = combine
    layer["branches"] = [list(b) for b in branches]
    return layer


def subnet(network, input_shape, layers, name=None):
    """A whole network (type name `network`, declared sample shape
    `input_shape`) used as one layer."""
    layer = {"kind": "network"}
    if name is not None:
        layer["name"] = name
    layer["network"] = network
    layer["input_shape"] = list(input_shape)
    layer["layers"] = list(layers)
    return layer


COMPOSITES = {"residual", "parallel", "network"}


def projection_layer(layer):
    """The projection of a residual layer as a one-layer list with its
    state_dict name, or None."""
    proj = layer["projection"]
    return None if proj is None else [dict(proj, name="projection")]


def all_layers(layers):
    """Every layer, composite layers' inner layers included (depth first)."""
    for layer in layers:
        yield layer
        kind = layer["kind"]
        if kind == "residual":
            yield from all_layers(layer["body"])
            if layer["projection"] is not None:
                yield layer["projection"]
        elif kind == "parallel":
            for branch in layer["branches"]:
                yield from all_layers(branch)
        elif kind == "network":
            yield from all_layers(layer["layers"])


def layer_prefix(index, layer):
    """PyTorch state_dict prefix: explicit name, else index in the full list."""
    return layer.get("name", str(index))


def conv_out_hw(layer, h, w):
    (kh, kw), (sh, sw) = layer["kernel"], layer["stride"]
    (ph, pw), (dh, dw) = layer["padding"], layer["dilation"]
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return oh, ow


def network_shapes(sample_shape, layers, base=""):
    """Walks the layer list with per-sample shapes (no batch axis).

    Returns (params, buffers, layer_out_shapes):
      params: ordered list of (param_name, shape, init) in layer order (the
        visiting order: composite layers' inner parameters in place), init in
        {"fan_in", "bias", "gamma", "beta"};
      buffers: ordered list of (buffer_name, shape, init), init in
        {"running_mean", "running_var"};
      layer_out_shapes: the sample shape after every layer of this list.
    base: name prefix of every parameter (for the inner lists of composites).
    """
    params = []
    buffers = []
    outs = []
    shape = tuple(sample_shape)
    for i, layer in enumerate(layers):
        kind = layer["kind"]
        prefix = base + layer_prefix(i, layer)
        if kind == "dense":
            assert len(shape) == 1, f"layer {i}: dense needs a rank-1 input, got {shape}"
            params.append((f"{prefix}.weight", (layer["out"], shape[0]), "fan_in"))
            if layer["bias"]:
                params.append((f"{prefix}.bias", (layer["out"],), "bias"))
            shape = (layer["out"],)
        elif kind == "conv2d":
            assert len(shape) == 3, f"layer {i}: conv2d needs a rank-3 input, got {shape}"
            c, h, w = shape
            oc = layer["out_channels"]
            params.append((f"{prefix}.weight", (oc, c, *layer["kernel"]), "fan_in"))
            if layer["bias"]:
                params.append((f"{prefix}.bias", (oc,), "bias"))
            oh, ow = conv_out_hw(layer, h, w)
            assert oh >= 1 and ow >= 1, (i, shape, layer)
            shape = (oc, oh, ow)
        elif kind in ("max_pool", "avg_pool"):
            assert len(shape) == 3, f"layer {i}: {kind} needs a rank-3 input, got {shape}"
            c, h, w = shape
            k, s = layer["kernel"], layer["stride"]
            shape = (c, (h - k) // s + 1, (w - k) // s + 1)
            assert shape[1] >= 1 and shape[2] >= 1, (i, layer)
        elif kind == "global_avg_pool":
            assert len(shape) == 3, f"layer {i}: {kind} needs a rank-3 input, got {shape}"
            shape = (shape[0],)
        elif kind == "flatten":
            shape = (int(np.prod(shape)),)
        elif kind == "batch_norm":
            assert len(shape) in (1, 3), f"layer {i}: batch_norm needs rank 1 or 3, got {shape}"
            params.append((f"{prefix}.weight", (shape[0],), "gamma"))
            params.append((f"{prefix}.bias", (shape[0],), "beta"))
            buffers.append((f"{prefix}.running_mean", (shape[0],), "running_mean"))
            buffers.append((f"{prefix}.running_var", (shape[0],), "running_var"))
        elif kind == "layer_norm":
            params.append((f"{prefix}.weight", shape, "gamma"))
            params.append((f"{prefix}.bias", shape, "beta"))
        elif kind == "residual":
            assert layer["body"], f"layer {prefix}: empty residual body"
            p, b, body_outs = network_shapes(shape, layer["body"], f"{prefix}.body.")
            params += p
            buffers += b
            if layer["projection"] is None:
                assert body_outs[-1] == shape, f"layer {prefix}: body maps {shape} to {body_outs[-1]}, needs a projection"
            else:
                p, b, proj_outs = network_shapes(shape, projection_layer(layer), f"{prefix}.")
                params += p
                assert proj_outs[-1] == body_outs[-1], f"layer {prefix}: projection {proj_outs[-1]} != body {body_outs[-1]}"
            shape = body_outs[-1]
        elif kind == "parallel":
            branch_outs = []
            for bi, branch in enumerate(layer["branches"]):
                assert branch, f"layer {prefix}: empty branch {bi}"
                p, b, bo = network_shapes(shape, branch, f"{prefix}.{bi}.")
                params += p
                buffers += b
                branch_outs.append(bo[-1])
            assert len(branch_outs) >= 2, f"layer {prefix}: needs at least two branches"
            if layer["combine"] == "add":
                assert all(s == branch_outs[0] for s in branch_outs), f"layer {prefix}: add of {branch_outs}"
                shape = branch_outs[0]
            else:
                assert layer["combine"] == "concat", layer
                rest = branch_outs[0][1:]
                assert all(s[1:] == rest for s in branch_outs), f"layer {prefix}: concat of {branch_outs}"
                shape = (sum(s[0] for s in branch_outs), *rest)
        elif kind == "network":
            assert tuple(layer["input_shape"]) == shape, f"layer {prefix}: declared input {layer['input_shape']}, gets {shape}"
            assert layer["layers"], f"layer {prefix}: empty network"
            p, b, inner_outs = network_shapes(shape, layer["layers"], f"{prefix}.")
            params += p
            buffers += b
            shape = inner_outs[-1]
        else:
            assert kind in ACTIVATIONS, layer
            if kind == "softmax":
                assert len(shape) == 1, "softmax is over the feature axis of rank-1 samples"
        outs.append(shape)
    return params, buffers, outs


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


def jax_forward(layers, params, x, record=None, buffers=None, mode=None, new_buffers=None, base=""):
    """params: dict name -> array. If record is a list, appends
    (label, layer, previous_layer, layer_input) for each relu/leaky_relu (the
    pre-activation) and max_pool layer, composite layers' inner ones included;
    label is the index for a top-level layer, else the dotted path of the
    inner layer (e.g. "block.body.1"); previous_layer is the layer before it
    in the same list, or None. buffers: dict of batch_norm running stats;
    mode: "train" (batch statistics) or "eval" (running statistics). In train
    mode, if new_buffers is a dict, the updated running stats are stored in
    it. base: name prefix of the parameters (inner lists of composites)."""
    h = x
    sub = dict(record=record, buffers=buffers, mode=mode, new_buffers=new_buffers)
    for i, layer in enumerate(layers):
        kind = layer["kind"]
        prefix = base + layer_prefix(i, layer)
        label = i if base == "" else prefix
        prev = layers[i - 1] if i > 0 else None
        if kind == "dense":
            h = h @ params[f"{prefix}.weight"].T
            if layer["bias"]:
                h = h + params[f"{prefix}.bias"]
        elif kind == "conv2d":
            (ph, pw) = layer["padding"]
            h = jax.lax.conv_general_dilated(
                h,
                params[f"{prefix}.weight"],
                window_strides=tuple(layer["stride"]),
                padding=((ph, ph), (pw, pw)),
                rhs_dilation=tuple(layer["dilation"]),
                dimension_numbers=("NCHW", "OIHW", "NCHW"),
                precision=jax.lax.Precision.HIGHEST,
            )
            if layer["bias"]:
                h = h + params[f"{prefix}.bias"][None, :, None, None]
        elif kind == "max_pool":
            if record is not None:
                record.append((label, layer, prev, h))
            k, s = layer["kernel"], layer["stride"]
            init = jnp.asarray(-jnp.inf, dtype=h.dtype)
            h = jax.lax.reduce_window(h, init, jax.lax.max, (1, 1, k, k), (1, 1, s, s), "VALID")
        elif kind == "avg_pool":
            k, s = layer["kernel"], layer["stride"]
            init = jnp.asarray(0.0, dtype=h.dtype)
            h = jax.lax.reduce_window(h, init, jax.lax.add, (1, 1, k, k), (1, 1, s, s), "VALID") / (k * k)
        elif kind == "global_avg_pool":
            h = jnp.mean(h, axis=(2, 3))
        elif kind == "flatten":
            h = h.reshape(h.shape[0], -1)
        elif kind == "batch_norm":
            c = h.shape[1]
            axes = (0, 2, 3) if h.ndim == 4 else (0,)
            bshape = (1, c, 1, 1) if h.ndim == 4 else (1, c)
            rm = buffers[f"{prefix}.running_mean"]
            rv = buffers[f"{prefix}.running_var"]
            if mode == "train":
                mean = jnp.mean(h, axis=axes)
                var = jnp.mean((h - mean.reshape(bshape)) ** 2, axis=axes)  # biased
                if new_buffers is not None:
                    n = h.size // c
                    mom = layer["momentum"]
                    new_buffers[f"{prefix}.running_mean"] = (1 - mom) * rm + mom * mean
                    new_buffers[f"{prefix}.running_var"] = (1 - mom) * rv + mom * var * (n / (n - 1))
            elif mode == "eval":
                mean, var = rm, rv
            else:
                raise ValueError(mode)
            h = (h - mean.reshape(bshape)) / jnp.sqrt(var.reshape(bshape) + layer["eps"])
            h = h * params[f"{prefix}.weight"].reshape(bshape) + params[f"{prefix}.bias"].reshape(bshape)
        elif kind == "layer_norm":
            axes = tuple(range(1, h.ndim))
            mean = jnp.mean(h, axis=axes, keepdims=True)
            var = jnp.mean((h - mean) ** 2, axis=axes, keepdims=True)  # biased
            h = (h - mean) / jnp.sqrt(var + layer["eps"])
            h = h * params[f"{prefix}.weight"][None] + params[f"{prefix}.bias"][None]
        elif kind == "residual":
            body = jax_forward(layer["body"], params, h, base=f"{prefix}.body.", **sub)
            proj = projection_layer(layer)
            skip = h if proj is None else jax_forward(proj, params, h, base=f"{prefix}.", **sub)
            h = skip + body
        elif kind == "parallel":
            outs = [jax_forward(br, params, h, base=f"{prefix}.{bi}.", **sub) for bi, br in enumerate(layer["branches"])]
            if layer["combine"] == "concat":
                h = jnp.concatenate(outs, axis=1)  # feature / channel axis
            else:
                h = outs[0]
                for o in outs[1:]:
                    h = h + o
        elif kind == "network":
            h = jax_forward(layer["layers"], params, h, base=f"{prefix}.", **sub)
        else:
            if record is not None and kind in ("relu", "leaky_relu"):
                record.append((label, layer, prev, h))
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
# Independent numpy forward pass (cross-check of conventions, e.g. exact gelu,
# conv2d cross-correlation / padding / dilation, pooling windows, batch_norm
# statistics and running-stat update, layer_norm axes)
# --------------------------------------------------------------------------

_np_erf = np.vectorize(math.erf, otypes=[np.float64])


def np_conv2d(x, w, b, stride, padding, dilation):
    """Direct cross-correlation, one output pixel at a time (torch.nn.Conv2d)."""
    bsz, c, hh, ww = x.shape
    oc, c2, kh, kw = w.shape
    assert c == c2
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.zeros((bsz, c, hh + 2 * ph, ww + 2 * pw))
    xp[:, :, ph : ph + hh, pw : pw + ww] = x
    oh = (hh + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (ww + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((bsz, oc, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            acc = np.zeros((bsz, oc))
            for ky in range(kh):
                for kx in range(kw):
                    # out[b,o,oy,ox] += sum_c xpad[b, c, oy*sh + ky*dh, ox*sw + kx*dw] * w[o, c, ky, kx]
                    pix = xp[:, :, oy * sh + ky * dh, ox * sw + kx * dw]  # [b, c]
                    acc += pix @ w[:, :, ky, kx].T
            out[:, :, oy, ox] = acc
    if b is not None:
        out += b[None, :, None, None]
    return out


def np_pool(x, k, s, reduce):
    bsz, c, hh, ww = x.shape
    oh, ow = (hh - k) // s + 1, (ww - k) // s + 1
    out = np.zeros((bsz, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            win = x[:, :, oy * s : oy * s + k, ox * s : ox * s + k].reshape(bsz, c, k * k)
            out[:, :, oy, ox] = reduce(win, axis=2)
    return out


def np_forward(layers, params, x, buffers=None, mode=None, base=""):
    """Returns (output, updated running stats (train mode) or {}). base: name
    prefix of the parameters (inner lists of composite layers)."""
    h = np.asarray(x, dtype=np.float64)
    new_buffers = {}
    for i, layer in enumerate(layers):
        kind = layer["kind"]
        prefix = base + layer_prefix(i, layer)
        if kind == "dense":
            w = params[f"{prefix}.weight"]
            # y[b, o] = sum_i x[b, i] * w[o, i] + bias[o]
            h = np.einsum("bi,oi->bo", h, w)
            if layer["bias"]:
                h = h + params[f"{prefix}.bias"][None, :]
        elif kind == "conv2d":
            b = params[f"{prefix}.bias"] if layer["bias"] else None
            h = np_conv2d(h, params[f"{prefix}.weight"], b, layer["stride"], layer["padding"], layer["dilation"])
        elif kind == "max_pool":
            h = np_pool(h, layer["kernel"], layer["stride"], np.max)
        elif kind == "avg_pool":
            h = np_pool(h, layer["kernel"], layer["stride"], np.mean)
        elif kind == "global_avg_pool":
            h = h.reshape(h.shape[0], h.shape[1], -1).mean(axis=2)
        elif kind == "flatten":
            if h.ndim == 4:
                # Channel-major: all of channel 0 (row-major H, W), then channel 1, ...
                h = np.stack([np.concatenate([h[bi, ci].ravel() for ci in range(h.shape[1])]) for bi in range(h.shape[0])])
        elif kind == "batch_norm":
            c = h.shape[1]
            # Per channel: all values over batch (and H, W), as rows of [C, n].
            per_ch = np.moveaxis(h, 1, 0).reshape(c, -1)
            n = per_ch.shape[1]
            if mode == "train":
                mean = per_ch.mean(axis=1)
                var = per_ch.var(axis=1)  # ddof=0 (biased), used to normalise
                mom = layer["momentum"]
                new_buffers[f"{prefix}.running_mean"] = (1 - mom) * buffers[f"{prefix}.running_mean"] + mom * mean
                new_buffers[f"{prefix}.running_var"] = (1 - mom) * buffers[f"{prefix}.running_var"] + mom * per_ch.var(
                    axis=1, ddof=1
                )
                assert n > 1
            else:
                assert mode == "eval"
                mean = buffers[f"{prefix}.running_mean"]
                var = buffers[f"{prefix}.running_var"]
            gamma, beta = params[f"{prefix}.weight"], params[f"{prefix}.bias"]
            norm = (per_ch - mean[:, None]) / np.sqrt(var[:, None] + layer["eps"]) * gamma[:, None] + beta[:, None]
            h = np.moveaxis(norm.reshape((c, h.shape[0]) + h.shape[2:]), 0, 1)
        elif kind == "layer_norm":
            flat = h.reshape(h.shape[0], -1)
            mean = flat.mean(axis=1, keepdims=True)
            var = flat.var(axis=1, keepdims=True)
            norm = (flat - mean) / np.sqrt(var + layer["eps"])
            h = norm.reshape(h.shape) * params[f"{prefix}.weight"][None] + params[f"{prefix}.bias"][None]
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
        elif kind == "residual":
            body, nb = np_forward(layer["body"], params, h, buffers, mode, base=f"{prefix}.body.")
            new_buffers.update(nb)
            if layer["projection"] is None:
                skip = h
            else:
                skip, nb = np_forward(projection_layer(layer), params, h, buffers, mode, base=f"{prefix}.")
                new_buffers.update(nb)
            assert skip.shape == body.shape
            h = body + skip
        elif kind == "parallel":
            outs = []
            for bi, branch in enumerate(layer["branches"]):
                o, nb = np_forward(branch, params, h, buffers, mode, base=f"{prefix}.{bi}.")
                new_buffers.update(nb)
                outs.append(o)
            if layer["combine"] == "concat":
                # Axis 1 (features, or channels of [batch, C, H, W]): branch 0's first.
                widths = [o.shape[1] for o in outs]
                cat = np.zeros((h.shape[0], sum(widths)) + outs[0].shape[2:])
                start = 0
                for o, wdt in zip(outs, widths):
                    cat[:, start : start + wdt] = o
                    start += wdt
                h = cat
            else:
                assert layer["combine"] == "add"
                h = np.sum(np.stack(outs), axis=0)
        elif kind == "network":
            h, nb = np_forward(layer["layers"], params, h, buffers, mode, base=f"{prefix}.")
            new_buffers.update(nb)
        else:
            raise ValueError(kind)
    return h, new_buffers


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
    """Weights (conv and dense) N(0, 1/fan_in) with fan_in = prod(shape[1:]);
    biases N(0, 0.1^2); norm scales (gamma) U(0.5, 1.5); norm shifts (beta)
    N(0, 0.2^2)."""
    params = {}
    for name, shape, init in shapes:
        if init == "fan_in":
            fan_in = int(np.prod(shape[1:]))
            params[name] = rng.normal(0.0, 1.0 / math.sqrt(fan_in), size=shape)
        elif init == "bias":
            params[name] = rng.normal(0.0, 0.1, size=shape)
        elif init == "gamma":
            params[name] = rng.uniform(0.5, 1.5, size=shape)
        elif init == "beta":
            params[name] = rng.normal(0.0, 0.2, size=shape)
        else:
            raise ValueError(init)
    return params


def sample_buffers(rng, buffer_shapes):
    """batch_norm running stats before the pass: mean N(0, 0.3^2), var U(0.5, 2)."""
    buffers = {}
    for name, shape, init in buffer_shapes:
        if init == "running_mean":
            buffers[name] = rng.normal(0.0, 0.3, size=shape)
        elif init == "running_var":
            buffers[name] = rng.uniform(0.5, 2.0, size=shape)
        else:
            raise ValueError(init)
    return buffers


def kink_report(layers, params, x, buffers=None, mode=None):
    """Returns (kinks, pools):
    kinks: list of (label, kind, min |pre|, n_neg, n_pos, n_dead) for
      relu/leaky; a unit is a feature (rank-1) or a channel (rank-3: over
      batch, H and W);
    pools: list of (label, min gap between the two largest values of a
      window, number of windows exempt because they are all exact zeros
      produced by a relu right before the pool).
    label: the layer index at the top level, or the dotted path of a layer
    inside a composite layer (see jax_forward)."""
    rec = []
    jax_forward(
        layers,
        {k: jnp.asarray(v) for k, v in params.items()},
        jnp.asarray(x),
        rec,
        buffers=None if buffers is None else {k: jnp.asarray(v) for k, v in buffers.items()},
        mode=mode,
    )
    kinks, pools = [], []
    for i, layer, prev, inp in rec:
        inp = np.asarray(inp)
        if layer["kind"] == "max_pool":
            k, s = layer["kernel"], layer["stride"]
            bsz, c, hh, ww = inp.shape
            oh, ow = (hh - k) // s + 1, (ww - k) // s + 1
            after_relu = prev is not None and prev["kind"] == "relu"
            gaps, exempt = [], 0
            for oy in range(oh):
                for ox in range(ow):
                    win = inp[:, :, oy * s : oy * s + k, ox * s : ox * s + k].reshape(bsz, c, k * k)
                    top2 = np.sort(win, axis=2)[:, :, -2:]
                    zero = (top2[:, :, 1] == 0.0) & (top2[:, :, 0] == 0.0)
                    if after_relu:
                        exempt += int(np.sum(zero))
                        gaps.extend((top2[:, :, 1] - top2[:, :, 0])[~zero].tolist())
                    else:
                        gaps.extend((top2[:, :, 1] - top2[:, :, 0]).ravel().tolist())
            pools.append((i, float(min(gaps)), exempt))
            continue
        pre = inp
        # Units that are negative for the whole batch ("dead" for relu).
        unit_axes = tuple(a for a in range(pre.ndim) if a != 1)
        dead = int(np.sum(np.all(pre < 0, axis=unit_axes)))
        kinks.append((i, layer["kind"], float(np.min(np.abs(pre))), int(np.sum(pre < 0)), int(np.sum(pre > 0)), dead))
    return kinks, pools


def kinks_ok(report):
    """No pre-activation near a kink, both signs present, and every unit
    positive for at least one sample (so no weight gradient is trivially 0);
    no max_pool window with a (near-)tie for its maximum."""
    kinks, pools = report
    return all(m > KINK_MARGIN and neg > 0 and pos > 0 and dead == 0 for _, _, m, neg, pos, dead in kinks) and all(
        gap > KINK_MARGIN for _, gap, _ in pools
    )


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
    if "input_size" in spec:  # dense fixtures: rank-1 samples
        assert "input_shape" not in spec
        sample_shape = (spec["input_size"],)
    else:  # rank-3 [C, H, W] samples
        sample_shape = tuple(spec["input_shape"])
        assert len(sample_shape) == 3, name
    batch = spec["batch"]
    loss = spec["loss"]
    shapes, buffer_shapes, layer_shapes = network_shapes(sample_shape, layers)
    out_shape = layer_shapes[-1]
    assert len(out_shape) == 1, f"{name}: the loss needs a rank-1 output, got {out_shape}"
    out_width = out_shape[0]
    for idx, expected in spec.get("expect_shapes", {}).items():
        assert layer_shapes[idx] == tuple(expected), f"{name}: layer {idx} gives {layer_shapes[idx]}, expected {expected}"
    mode = spec.get("mode")
    has_bn = any(layer["kind"] == "batch_norm" for layer in all_layers(layers))
    assert (mode in ("train", "eval")) if has_bn else (mode is None), f"{name}: mode {mode!r}"

    rng = np.random.default_rng(spec["seed"])

    # Data first (fixed), then resample weights until no relu/leaky kink or
    # max_pool tie is hit.
    x = rng.standard_normal((batch, *sample_shape))
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
    buffers_np = sample_buffers(rng, buffer_shapes) if buffer_shapes else None

    for attempt in range(MAX_RESAMPLES):
        params_np = sample_params(rng, shapes)
        report = kink_report(layers, params_np, x, buffers_np, mode)
        if kinks_ok(report):
            break
    else:
        raise AssertionError(f"{name}: could not avoid relu/leaky kinks or max_pool ties in {MAX_RESAMPLES} tries")

    params = {k: jnp.asarray(v) for k, v in params_np.items()}
    buffers = None if buffers_np is None else {k: jnp.asarray(v) for k, v in buffers_np.items()}
    xj = jnp.asarray(x)
    labels_j = None if labels is None else jnp.asarray(labels)
    target_j = None if target is None else jnp.asarray(target)

    def f(p, xx):
        out = jax_forward(layers, p, xx, buffers=buffers, mode=mode)
        return jax_loss(loss, out, labels=labels_j, target=target_j)

    new_buffers = {}
    out = np.asarray(jax_forward(layers, params, xj, buffers=buffers, mode=mode, new_buffers=new_buffers))
    new_buffers = {k: np.asarray(v) for k, v in new_buffers.items()}
    loss_value, (g_params, g_x) = jax.value_and_grad(f, argnums=(0, 1))(params, xj)
    loss_value = float(loss_value)

    # Independent numpy cross-check of forward + loss conventions.
    out_np, new_buffers_np = np_forward(layers, params_np, x, buffers_np, mode)
    assert out.shape == (batch, out_width)
    assert np.allclose(out, out_np, rtol=1e-12, atol=1e-13), f"{name}: jax/numpy forward mismatch"
    loss_np = np_loss(loss, out_np, labels=labels, target=target)
    assert math.isclose(loss_value, loss_np, rel_tol=1e-12, abs_tol=1e-13), (
        f"{name}: jax/numpy loss mismatch {loss_value!r} vs {loss_np!r}"
    )
    assert set(new_buffers) == set(new_buffers_np), name
    assert set(new_buffers) == ({b for b, _, _ in buffer_shapes} if mode == "train" else set()), name
    for bname in new_buffers:
        assert np.allclose(new_buffers[bname], new_buffers_np[bname], rtol=1e-12, atol=1e-13), (
            f"{name}: jax/numpy running-stat mismatch for {bname}"
        )

    fd_rng = np.random.default_rng(spec["seed"] + 1_000_000)
    n_fd, worst = finite_difference_check(f, params, xj, fd_rng, name)

    doc = {}
    doc["description"] = spec["description"]
    doc["generator"] = f"tools/gen_fixtures.py, jax {jax.__version__}, float64"
    if "input_size" in spec:
        doc["input_size"] = spec["input_size"]
    else:
        doc["input_shape"] = list(sample_shape)
    doc["layers"] = layers
    doc["loss"] = loss
    if mode is not None:
        doc["mode"] = mode
    doc["batch"] = batch
    doc["params"] = {pname: tensor(params_np[pname]) for pname, _, _ in shapes}
    if buffers_np is not None:
        doc["buffers"] = {bname: tensor(buffers_np[bname]) for bname, _, _ in buffer_shapes}
    doc["input"] = tensor(x)
    if labels is not None:
        doc["labels"] = [int(v) for v in labels]
    if target is not None:
        doc["target"] = tensor(target)
    doc["output"] = tensor(out)
    doc["loss_value"] = loss_value
    doc["grads"] = {pname: tensor(g_params[pname]) for pname, _, _ in shapes}
    doc["input_grad"] = tensor(g_x)
    if new_buffers:
        doc["buffers_after"] = {bname: tensor(new_buffers[bname]) for bname, _, _ in buffer_shapes}

    info = {
        "attempts": attempt + 1,
        "kinks": report[0],
        "pools": report[1],
        "layer_shapes": layer_shapes,
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
        def one(v):
            # A short layer object inside a composite layer (a projection) on one line.
            if isinstance(v, dict) and "kind" in v and len(json.dumps(v)) < 160:
                return json.dumps(v)
            return to_json(v, indent + 1)

        items = [f"{pad_in}{json.dumps(k)}: {one(v)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return json.dumps(value, allow_nan=False)
        if all(isinstance(v, dict) for v in value):
            # A list of layers: each short one on one line, a long one (a
            # composite layer) spread out.
            return "[\n" + ",\n".join(
                pad_in + (json.dumps(v) if len(json.dumps(v)) < 160 else to_json(v, indent + 1)) for v in value
            ) + "\n" + pad + "]"
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
    # ---------------------------------------------------------------------
    # Convolutional fixtures: rank-3 samples [C, H, W], PyTorch semantics.
    # expect_shapes: sample shape after layer <index> (asserted).
    # ---------------------------------------------------------------------
    {
        "name": "conv_stride_pad",
        "seed": 5005,
        "description": "Input [2, 7, 7] -> conv1 conv2d(3, kernel 3, stride 2, padding 1) -> [3, 4, 4] -> "
        "relu -> flatten (48) -> fc dense(4); softmax cross-entropy (mean over batch); batch 3.",
        "input_shape": [2, 7, 7],
        "layers": [conv2d(3, 3, "conv1", stride=2, padding=1), act("relu"), act("flatten"), dense(4, "fc")],
        "expect_shapes": {0: (3, 4, 4), 2: (48,)},
        "loss": "softmax_cross_entropy",
        "batch": 3,
    },
    {
        "name": "conv_dilation_nobias",
        "seed": 6006,
        "description": "Input [2, 8, 7] -> conv2d(3, kernel [3, 2], stride [1, 2], padding [2, 1], "
        "dilation [2, 2], no bias) -> [3, 8, 4] -> tanh -> flatten (96) -> dense(3); MSE (mean over all "
        "elements) against a random target; batch 2. Unnamed layers: params 0.weight, 3.weight, 3.bias.",
        "input_shape": [2, 8, 7],
        "layers": [
            conv2d(3, (3, 2), stride=(1, 2), padding=(2, 1), dilation=2, bias=False),
            act("tanh"),
            act("flatten"),
            dense(3),
        ],
        "expect_shapes": {0: (3, 8, 4), 2: (96,)},
        "loss": "mse",
        "batch": 2,
    },
    {
        "name": "pools",
        "seed": 7007,
        "description": "Input [2, 6, 6] -> conv conv2d(3, kernel 3, padding 1) -> [3, 6, 6] -> max_pool(2) -> "
        "[3, 3, 3] -> avg_pool(2, stride 1) -> [3, 2, 2] -> flatten (12) -> fc dense(3); softmax "
        "cross-entropy; batch 3. Every max_pool window's two largest values differ by > 1e-3.",
        "input_shape": [2, 6, 6],
        "layers": [
            conv2d(3, 3, "conv", padding=1),
            max_pool(2),
            avg_pool(2, stride=1),
            act("flatten"),
            dense(3, "fc"),
        ],
        "expect_shapes": {0: (3, 6, 6), 1: (3, 3, 3), 2: (3, 2, 2), 3: (12,)},
        "loss": "softmax_cross_entropy",
        "batch": 3,
    },
    {
        "name": "batch_norm_train",
        "seed": 8008,
        "description": "Train-mode batch norm. Input [3, 5, 5] -> conv conv2d(4, kernel 3) -> [4, 3, 3] -> "
        "bn batch_norm (per channel over batch*H*W) -> relu -> global_avg_pool -> [4] -> fc dense(6) -> "
        "bn1d batch_norm (per feature over batch) -> tanh -> head dense(3); softmax cross-entropy; "
        "batch 4. Normalises with batch mean and biased batch variance (gradients flow through the "
        "batch statistics); buffers_after = running stats after this one forward pass (momentum 0.1, "
        "unbiased variance).",
        "input_shape": [3, 5, 5],
        "layers": [
            conv2d(4, 3, "conv"),
            batch_norm("bn"),
            act("relu"),
            act("global_avg_pool"),
            dense(6, "fc"),
            batch_norm("bn1d"),
            act("tanh"),
            dense(3, "head"),
        ],
        "expect_shapes": {0: (4, 3, 3), 3: (4,), 4: (6,)},
        "loss": "softmax_cross_entropy",
        "mode": "train",
        "batch": 4,
    },
    {
        "name": "batch_norm_eval",
        "seed": 9009,
        "description": "Eval-mode batch norm: same architecture as batch_norm_train (input [3, 5, 5] -> conv "
        "conv2d(4, kernel 3) -> bn batch_norm -> relu -> global_avg_pool -> fc dense(6) -> bn1d "
        "batch_norm -> tanh -> head dense(3)), different weights/data; softmax cross-entropy; batch 4. "
        "Normalises with the given running stats, which are not updated (no buffers_after).",
        "input_shape": [3, 5, 5],
        "layers": [
            conv2d(4, 3, "conv"),
            batch_norm("bn"),
            act("relu"),
            act("global_avg_pool"),
            dense(6, "fc"),
            batch_norm("bn1d"),
            act("tanh"),
            dense(3, "head"),
        ],
        "expect_shapes": {0: (4, 3, 3), 3: (4,), 4: (6,)},
        "loss": "softmax_cross_entropy",
        "mode": "eval",
        "batch": 4,
    },
    {
        "name": "layer_norm",
        "seed": 10010,
        "description": "Input [2, 4, 4] -> conv conv2d(3, kernel 3) -> [3, 2, 2] -> ln layer_norm over the "
        "whole [3, 2, 2] sample (weight/bias [3, 2, 2]) -> gelu (exact erf) -> flatten (12) -> fc dense(4) "
        "-> ln1d layer_norm over [4] -> head dense(3); softmax cross-entropy; batch 3. Biased variance, "
        "eps 1e-5.",
        "input_shape": [2, 4, 4],
        "layers": [
            conv2d(3, 3, "conv"),
            layer_norm("ln"),
            act("gelu"),
            act("flatten"),
            dense(4, "fc"),
            layer_norm("ln1d"),
            dense(3, "head"),
        ],
        "expect_shapes": {0: (3, 2, 2), 3: (12,), 4: (4,)},
        "loss": "softmax_cross_entropy",
        "batch": 3,
    },
    {
        "name": "cnn",
        "seed": 11011,
        "description": "Small CNN, train-mode batch norm. Input [1, 12, 12] -> conv1 conv2d(4, kernel 3) -> "
        "[4, 10, 10] -> relu -> max_pool(2) -> [4, 5, 5] -> conv2 conv2d(6, kernel 3, padding 1) -> "
        "[6, 5, 5] -> bn batch_norm -> relu -> max_pool(2) (floor: last row/column dropped) -> [6, 2, 2] "
        "-> flatten (24) -> fc dense(8) -> relu -> head dense(5); softmax cross-entropy; batch 4.",
        "input_shape": [1, 12, 12],
        "layers": [
            conv2d(4, 3, "conv1"),
            act("relu"),
            max_pool(2),
            conv2d(6, 3, "conv2", padding=1),
            batch_norm("bn"),
            act("relu"),
            max_pool(2),
            act("flatten"),
            dense(8, "fc"),
            act("relu"),
            dense(5, "head"),
        ],
        "expect_shapes": {0: (4, 10, 10), 2: (4, 5, 5), 3: (6, 5, 5), 6: (6, 2, 2), 7: (24,)},
        "loss": "softmax_cross_entropy",
        "mode": "train",
        "batch": 4,
    },
    # ---------------------------------------------------------------------
    # Composite layers: residual (identity or projection skip), parallel
    # (concat / add), a network used as a layer. Inner parameters are named
    # <prefix>.body.<j>.*, <prefix>.projection.*, <prefix>.<branch>.<j>.*,
    # <prefix>.<inner prefix>.* (see residual / parallel / subnet above).
    # ---------------------------------------------------------------------
    {
        "name": "residual_projection",
        "seed": 13013,
        "description": "Residual blocks on rank-3 samples. Input [2, 6, 6] -> stem conv2d(3, kernel 3, padding 1) "
        "-> tanh -> block residual { conv2d(3, kernel 3, padding 1), tanh, conv2d(3, kernel 3, padding 1) } "
        "(output = x + body(x)) -> tanh -> down residual(projection) { conv2d(4, kernel 3, stride 2, padding 1), "
        "tanh, conv2d(4, kernel 3, padding 1) } -> [4, 3, 3] (output = body(x) + projection(x), projection a "
        "1x1 conv2d(4, stride 2) with bias: down.projection.weight [4, 3, 1, 1]) -> tanh -> global_avg_pool -> "
        "[4] -> head dense(3); softmax cross-entropy; batch 3. Inner layers are numbered from 0 within the "
        "body, counting activations: block.body.0, block.body.2; projection parameters follow the body's.",
        "input_shape": [2, 6, 6],
        "layers": [
            conv2d(3, 3, "stem", padding=1),
            act("tanh"),
            residual([conv2d(3, 3, padding=1), act("tanh"), conv2d(3, 3, padding=1)], "block"),
            act("tanh"),
            residual(
                [conv2d(4, 3, stride=2, padding=1), act("tanh"), conv2d(4, 3, padding=1)],
                "down",
                projection=conv2d(4, 1, stride=2),
            ),
            act("tanh"),
            act("global_avg_pool"),
            dense(3, "head"),
        ],
        "expect_shapes": {0: (3, 6, 6), 2: (3, 6, 6), 4: (4, 3, 3), 6: (4,), 7: (3,)},
        "loss": "softmax_cross_entropy",
        "batch": 3,
    },
    {
        "name": "residual_dense",
        "seed": 14014,
        "description": "Residual blocks on rank-1 samples. 5 -> fc dense(6) -> gelu (exact erf) -> r residual "
        "{ dense(6), tanh, dense(6) } (output = x + body(x)) -> p residual(projection) { dense(4), tanh } "
        "(output = body(x) + projection(x), projection dense 6 -> 4 with bias: p.projection.weight [4, 6], "
        "p.projection.bias [4]) -> head dense(3); softmax cross-entropy; batch 4.",
        "input_size": 5,
        "layers": [
            dense(6, "fc"),
            act("gelu"),
            residual([dense(6), act("tanh"), dense(6)], "r"),
            residual([dense(4), act("tanh")], "p", projection=dense(4)),
            dense(3, "head"),
        ],
        "expect_shapes": {0: (6,), 2: (6,), 3: (4,), 4: (3,)},
        "loss": "softmax_cross_entropy",
        "batch": 4,
    },
    {
        "name": "parallel_concat",
        "seed": 15015,
        "description": "Parallel branches. Input [2, 5, 5] -> par parallel(concat) { branch 0: conv2d(2, kernel 3, "
        "padding 1), tanh; branch 1: conv2d(3, kernel 1), sigmoid } -> [5, 5, 5] (concatenated along channels, "
        "branch 0's 2 channels first) -> max_pool(2) -> [5, 2, 2] -> flatten (20) -> fc dense(4) -> sum "
        "parallel(add) { branch 0: dense(3); branch 1: dense(3), tanh } (elementwise sum) -> [3]; softmax "
        "cross-entropy; batch 3. Branch b's layers are numbered from 0 within the branch: par.0.0, par.1.0, "
        "sum.0.0, sum.1.0. Every max_pool window's two largest values differ by > 1e-3.",
        "input_shape": [2, 5, 5],
        "layers": [
            parallel("concat", [[conv2d(2, 3, padding=1), act("tanh")], [conv2d(3, 1), act("sigmoid")]], "par"),
            max_pool(2),
            act("flatten"),
            dense(4, "fc"),
            parallel("add", [[dense(3)], [dense(3), act("tanh")]], "sum"),
        ],
        "expect_shapes": {0: (5, 5, 5), 1: (5, 2, 2), 2: (20,), 3: (4,), 4: (3,)},
        "loss": "softmax_cross_entropy",
        "batch": 3,
    },
    {
        "name": "nested",
        "seed": 16016,
        "description": "A network used as a layer. Encoder { input: [6], fc1: dense(5), tanh, fc2: dense(4) }; "
        "Outer { input: [6], encoder: Encoder, relu, head: dense(3) }; softmax cross-entropy; batch 4. The "
        "encoder's parameters are prefixed with its field name: encoder.fc1.weight, ..., encoder.fc2.bias. "
        "Every relu input is >= 1e-3 away from 0.",
        "input_size": 6,
        "layers": [
            subnet("Encoder", [6], [dense(5, "fc1"), act("tanh"), dense(4, "fc2")], "encoder"),
            act("relu"),
            dense(3, "head"),
        ],
        "expect_shapes": {0: (4,), 1: (4,), 2: (3,)},
        "loss": "softmax_cross_entropy",
        "batch": 4,
    },
]

# Parameter names (in visiting order) the composite fixtures must have, as
# spelled out for the Rust side (checked in main).
EXPECT_PARAM_NAMES = {
    "residual_projection": [
        "stem.weight", "stem.bias",
        "block.body.0.weight", "block.body.0.bias", "block.body.2.weight", "block.body.2.bias",
        "down.body.0.weight", "down.body.0.bias", "down.body.2.weight", "down.body.2.bias",
        "down.projection.weight", "down.projection.bias",
        "head.weight", "head.bias",
    ],
    "residual_dense": [
        "fc.weight", "fc.bias",
        "r.body.0.weight", "r.body.0.bias", "r.body.2.weight", "r.body.2.bias",
        "p.body.0.weight", "p.body.0.bias", "p.projection.weight", "p.projection.bias",
        "head.weight", "head.bias",
    ],
    "parallel_concat": [
        "par.0.0.weight", "par.0.0.bias", "par.1.0.weight", "par.1.0.bias",
        "fc.weight", "fc.bias",
        "sum.0.0.weight", "sum.0.0.bias", "sum.1.0.weight", "sum.1.0.bias",
    ],
    "nested": [
        "encoder.fc1.weight", "encoder.fc1.bias", "encoder.fc2.weight", "encoder.fc2.bias",
        "head.weight", "head.bias",
    ],
}
EXPECT_PARAM_SHAPES = {
    ("residual_projection", "down.projection.weight"): [4, 3, 1, 1],
    ("residual_dense", "p.projection.weight"): [4, 6],
    ("residual_dense", "p.projection.bias"): [4],
}


# --------------------------------------------------------------------------
# Interop with PyTorch-style safetensors files
#
# jax_cnn.safetensors / jax_cnn.json: a small eval-mode CNN whose float32
# weights are stored exactly as `safetensors.torch.save_file(model.state_dict(),
# ...)` would store them, plus inputs and float64 reference outputs.
# staticnet_cnn.safetensors / staticnet_cnn.json (written by a Rust test, may
# be missing): the same architecture saved by staticnet; it is read back here
# and must hold exactly the PyTorch tensor names, dtypes and shapes and
# reproduce the outputs that staticnet computed.
# --------------------------------------------------------------------------

CNN_INPUT_SHAPE = (1, 8, 8)
CNN_LAYERS = [
    conv2d(4, 3, "conv", padding=1),
    batch_norm("bn"),
    act("relu"),
    max_pool(2),
    act("flatten"),
    dense(3, "fc"),
]
CNN_EXPECT_SHAPES = {0: (4, 8, 8), 1: (4, 8, 8), 3: (4, 4, 4), 4: (64,), 5: (3,)}
CNN_MODE = "eval"
# The PyTorch state_dict of the network above, in state_dict order:
# name -> (safetensors dtype, numpy dtype, shape).
CNN_STATE_DICT = {
    "conv.weight": ("F32", np.float32, (4, 1, 3, 3)),
    "conv.bias": ("F32", np.float32, (4,)),
    "bn.weight": ("F32", np.float32, (4,)),
    "bn.bias": ("F32", np.float32, (4,)),
    "bn.running_mean": ("F32", np.float32, (4,)),
    "bn.running_var": ("F32", np.float32, (4,)),
    "bn.num_batches_tracked": ("I64", np.int64, ()),
    "fc.weight": ("F32", np.float32, (3, 64)),
    "fc.bias": ("F32", np.float32, (3,)),
}
SAFETENSORS_ITEMSIZE = {"F32": 4, "F64": 8, "I64": 8}

JAX_CNN_SEED = 12012
JAX_CNN_BATCH = 3
# A plausible count for a trained model (5 epochs of 938 batches); any value is
# legal. PyTorch only uses it when momentum=None.
JAX_CNN_NUM_BATCHES_TRACKED = 4690

# Output tolerance for a float32 implementation against the float64
# reference: |out - ref| <= INTEROP_RTOL * max(1, |ref|), elementwise.
INTEROP_RTOL = 1e-5
# The float32 forward simulated here (numpy) must stay within this fraction of
# INTEROP_RTOL, so the Rust side has headroom for another summation order.
F32_HEADROOM = 0.1
F32_HEADROOM_PURE = 0.25  # the same for the error relative to |ref| alone
# Every reference output of jax_cnn is at least this large in magnitude, so a
# purely relative comparison (without the max(1, .) floor) is meaningful too.
JAX_CNN_MIN_ABS_OUTPUT = 0.1

JAX_CNN_ST = OUT_DIR / "jax_cnn.safetensors"
JAX_CNN_JSON = OUT_DIR / "jax_cnn.json"
STATICNET_CNN_ST = OUT_DIR / "staticnet_cnn.safetensors"
STATICNET_CNN_JSON = OUT_DIR / "staticnet_cnn.json"


def cnn_check_spec():
    """The CNN layer list must give exactly CNN_STATE_DICT (in order) and the
    expected per-layer shapes."""
    shapes, buffer_shapes, layer_shapes = network_shapes(CNN_INPUT_SHAPE, CNN_LAYERS)
    for idx, expected in CNN_EXPECT_SHAPES.items():
        assert layer_shapes[idx] == expected, (idx, layer_shapes[idx], expected)
    names = [n for n, _, _ in shapes[:4]] + [n for n, _, _ in buffer_shapes] + ["bn.num_batches_tracked"]
    names += [n for n, _, _ in shapes[4:]]
    assert names == list(CNN_STATE_DICT), names
    for n, shape, _ in shapes + buffer_shapes:
        assert CNN_STATE_DICT[n][2] == tuple(shape), (n, shape)
    return shapes, buffer_shapes, layer_shapes


def read_safetensors_header(path):
    """Parses the raw safetensors container (independently of the safetensors
    package): u64 little-endian header length, JSON header, data buffer.
    Checks that the tensors' byte ranges tile the data buffer exactly.
    Returns (tensors: name -> {"dtype", "shape", "data_offsets"}, metadata or None)."""
    raw = Path(path).read_bytes()
    assert len(raw) >= 8, f"{path}: shorter than the 8-byte header length"
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), f"{path}: header length {n} exceeds the file"
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    assert isinstance(header, dict), f"{path}: header is not a JSON object"
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        assert isinstance(metadata, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ), f"{path}: __metadata__ must map strings to strings, got {metadata!r}"
    data_len = len(raw) - 8 - n
    spans = []
    for name, info in header.items():
        assert set(info) == {"dtype", "shape", "data_offsets"}, f"{path}: {name}: keys {sorted(info)}"
        start, end = info["data_offsets"]
        size = SAFETENSORS_ITEMSIZE.get(info["dtype"])
        if size is not None:
            assert end - start == size * math.prod(info["shape"]), f"{path}: {name}: byte size / shape mismatch"
        spans.append((start, end, name))
    pos = 0
    for start, end, name in sorted(spans):
        assert start == pos and end >= start, f"{path}: {name}: data_offsets {[start, end]} leave a gap or overlap"
        pos = end
    assert pos == data_len, f"{path}: tensors cover {pos} bytes of a {data_len}-byte data buffer"
    return header, metadata


def load_cnn_state_dict(path):
    """Loads a CNN state_dict file and asserts it holds exactly the PyTorch
    names, dtypes and shapes of CNN_STATE_DICT (nothing more, nothing less).
    Returns (name -> numpy array in CNN_STATE_DICT order, metadata or None)."""
    header, metadata = read_safetensors_header(path)
    expected = {n: {"dtype": d, "shape": list(s)} for n, (d, _, s) in CNN_STATE_DICT.items()}
    got = {n: {"dtype": v["dtype"], "shape": v["shape"]} for n, v in header.items()}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, f"{path}: tensor names differ: missing {missing}, unexpected {extra}"
    wrong = {n: (got[n], expected[n]) for n in expected if got[n] != expected[n]}
    assert not wrong, f"{path}: (got, expected) dtype/shape: {wrong}"

    tensors = st_load_file(str(path))
    assert set(tensors) == set(expected), path
    out = {}
    for name, (_, np_dtype, shape) in CNN_STATE_DICT.items():
        a = tensors[name]
        assert a.dtype == np_dtype and a.shape == shape, (path, name, a.dtype, a.shape)
        if np_dtype == np.float32:
            assert np.all(np.isfinite(a)), f"{path}: {name} is not finite"
        out[name] = a
    assert np.all(out["bn.running_var"] > 0), f"{path}: bn.running_var must be positive"
    assert int(out["bn.num_batches_tracked"]) >= 0, f"{path}: bn.num_batches_tracked is negative"
    return out, metadata


def np_cnn_forward(sd, x, dtype=np.float64):
    """Reference forward of the CNN in plain numpy, written for this network
    only (independent of jax_forward and of the generic np_forward), straight
    from the PyTorch state_dict. Eval mode. Computes in `dtype`."""
    f = lambda name: np.asarray(sd[name], dtype=dtype)  # noqa: E731
    x = np.asarray(x, dtype=dtype)
    bsz, cin, hh, ww = x.shape
    w, b = f("conv.weight"), f("conv.bias")
    oc, _, kh, kw = w.shape
    # conv2d, padding 1, stride 1: shift-and-add over the kernel taps.
    xp = np.zeros((bsz, cin, hh + 2, ww + 2), dtype=dtype)
    xp[:, :, 1:-1, 1:-1] = x
    h = np.zeros((bsz, oc, hh, ww), dtype=dtype)
    for o in range(oc):
        acc = np.full((bsz, hh, ww), b[o], dtype=dtype)
        for c in range(cin):
            for i in range(kh):
                for j in range(kw):
                    acc = acc + w[o, c, i, j] * xp[:, c, i : i + hh, j : j + ww]
        h[:, o] = acc
    # batch_norm, eval: running statistics, eps 1e-5.
    for o in range(oc):
        scale = f("bn.weight")[o] / np.sqrt(f("bn.running_var")[o] + dtype(1e-5))
        h[:, o] = (h[:, o] - f("bn.running_mean")[o]) * scale + f("bn.bias")[o]
    h = np.maximum(h, dtype(0))  # relu
    h = h.reshape(bsz, oc, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))  # max_pool(2)
    h = h.reshape(bsz, -1)  # flatten, channel-major (torch.flatten(x, 1))
    return h @ f("fc.weight").T + f("fc.bias")


def cnn_split(sd):
    """state_dict -> (params, buffers) as float64 numpy arrays (no num_batches_tracked)."""
    shapes, buffer_shapes, _ = cnn_check_spec()
    params = {n: np.asarray(sd[n], dtype=np.float64) for n, _, _ in shapes}
    buffers = {n: np.asarray(sd[n], dtype=np.float64) for n, _, _ in buffer_shapes}
    return params, buffers


def cnn_reference_outputs(sd, x, label):
    """Float64 outputs of the CNN: JAX (jax_forward), cross-checked against the
    generic numpy forward and np_cnn_forward to 1e-12."""
    params, buffers = cnn_split(sd)
    x = np.asarray(x, dtype=np.float64)
    out = np.asarray(
        jax_forward(
            CNN_LAYERS,
            {k: jnp.asarray(v) for k, v in params.items()},
            jnp.asarray(x),
            buffers={k: jnp.asarray(v) for k, v in buffers.items()},
            mode=CNN_MODE,
        )
    )
    out_np, _ = np_forward(CNN_LAYERS, params, x, buffers, CNN_MODE)
    out_own = np_cnn_forward(sd, x)
    assert out.shape == (x.shape[0], 3), (label, out.shape)
    assert np.allclose(out, out_np, rtol=1e-12, atol=1e-13), f"{label}: jax / generic numpy forward mismatch"
    assert np.allclose(out, out_own, rtol=1e-12, atol=1e-13), f"{label}: jax / np_cnn_forward mismatch"
    return out


def rel_err(out, ref):
    """max over elements of |out - ref| / max(1, |ref|)."""
    return float(np.max(np.abs(out - ref) / np.maximum(1.0, np.abs(ref))))


def json_tensor(doc, key, path):
    """A tensor from a fixture JSON: {"shape": [...], "data": [...]} (flat,
    row-major), or a nested list."""
    assert key in doc, f"{path}: no {key!r}"
    v = doc[key]
    if isinstance(v, dict):
        assert set(v) >= {"shape", "data"}, f"{path}: {key} needs shape and data"
        a = np.asarray(v["data"], dtype=np.float64)
        assert a.size == math.prod(v["shape"]), f"{path}: {key}: {a.size} values for shape {v['shape']}"
        return a.reshape(v["shape"])
    return np.asarray(v, dtype=np.float64)


def build_jax_cnn():
    shapes, buffer_shapes, layer_shapes = cnn_check_spec()
    rng = np.random.default_rng(JAX_CNN_SEED)
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    x32 = f32(rng.standard_normal((JAX_CNN_BATCH, *CNN_INPUT_SHAPE)))
    x = x32.astype(np.float64)
    buffers = {k: f32(v).astype(np.float64) for k, v in sample_buffers(rng, buffer_shapes).items()}
    for attempt in range(MAX_RESAMPLES):
        params = {k: f32(v).astype(np.float64) for k, v in sample_params(rng, shapes).items()}
        report = kink_report(CNN_LAYERS, params, x, buffers, CNN_MODE)
        if kinks_ok(report):
            out = np_forward(CNN_LAYERS, params, x, buffers, CNN_MODE)[0]
            if np.min(np.abs(out)) >= JAX_CNN_MIN_ABS_OUTPUT:
                break
    else:
        raise AssertionError(
            f"jax_cnn: could not avoid relu kinks, max_pool ties or small outputs in {MAX_RESAMPLES} tries"
        )

    sd = {}
    for name, (_, np_dtype, _) in CNN_STATE_DICT.items():
        if name == "bn.num_batches_tracked":
            sd[name] = np.array(JAX_CNN_NUM_BATCHES_TRACKED, dtype=np.int64)
        else:
            sd[name] = np.ascontiguousarray((params | buffers)[name], dtype=np_dtype)
            assert np.array_equal(sd[name].astype(np.float64), (params | buffers)[name]), name

    out = cnn_reference_outputs(sd, x, "jax_cnn")
    # Float32 arithmetic (numpy, its own summation order) must be well inside
    # the tolerance the Rust side uses.
    out32 = np_cnn_forward(sd, x32, dtype=np.float32)
    assert out32.dtype == np.float32
    assert np.min(np.abs(out)) >= JAX_CNN_MIN_ABS_OUTPUT
    err32 = rel_err(out32.astype(np.float64), out)
    err32_pure = float(np.max(np.abs(out32 - out) / np.abs(out)))
    assert err32 <= F32_HEADROOM * INTEROP_RTOL and err32_pure <= F32_HEADROOM_PURE * INTEROP_RTOL, (
        f"jax_cnn: float32 forward error {err32:.3e} (pure relative {err32_pure:.3e}) too close to tolerance"
    )

    doc = {}
    doc["description"] = (
        "PyTorch-style safetensors interop, eval mode. Input [1, 8, 8] -> conv conv2d(4, kernel 3, padding 1) -> "
        "[4, 8, 8] -> bn batch_norm (running stats) -> relu -> max_pool(2) -> [4, 4, 4] -> flatten (64) -> "
        "fc dense(3); batch 3. Weights: jax_cnn.safetensors (float32, PyTorch state_dict names, incl. "
        "bn.num_batches_tracked int64 scalar); params/buffers below repeat them exactly. input is float32-"
        "representable; output is computed in float64 from the float32 values. Compare a float32 "
        f"implementation with |out - ref| <= {INTEROP_RTOL:g} * max(1, |ref|); every |ref| >= "
        f"{JAX_CNN_MIN_ABS_OUTPUT:g}, so a purely relative {INTEROP_RTOL:g} check holds too."
    )
    doc["generator"] = f"tools/gen_fixtures.py, jax {jax.__version__}, safetensors {safetensors.__version__}, float64"
    doc["input_shape"] = list(CNN_INPUT_SHAPE)
    doc["layers"] = CNN_LAYERS
    doc["mode"] = CNN_MODE
    doc["batch"] = JAX_CNN_BATCH
    doc["safetensors"] = {
        "file": JAX_CNN_ST.name,
        "tensors": {n: {"dtype": d, "shape": list(s)} for n, (d, _, s) in CNN_STATE_DICT.items()},
    }
    doc["params"] = {pname: tensor(params[pname]) for pname, _, _ in shapes}
    doc["buffers"] = {bname: tensor(buffers[bname]) for bname, _, _ in buffer_shapes}
    doc["num_batches_tracked"] = JAX_CNN_NUM_BATCHES_TRACKED
    doc["input"] = tensor(x)
    doc["output"] = tensor(out)
    doc["rtol"] = INTEROP_RTOL
    info = {
        "attempts": attempt + 1,
        "report": report,
        "layer_shapes": layer_shapes,
        "err32": err32,
        "err32_pure": err32_pure,
    }
    return sd, doc, info


def write_jax_cnn():
    sd, doc, info = build_jax_cnn()
    # Exactly what safetensors.torch.save_file(model.state_dict(), path) writes:
    # same serializer, dtype strings and names, no __metadata__.
    st_save_file(sd, str(JAX_CNN_ST))
    text = to_json(doc) + "\n"
    assert json.loads(text) == json.loads(json.dumps(doc)), "jax_cnn"
    JAX_CNN_JSON.write_text(text)

    print(f"\n{JAX_CNN_ST.relative_to(REPO_ROOT)} ({JAX_CNN_ST.stat().st_size} bytes), "
          f"{JAX_CNN_JSON.relative_to(REPO_ROOT)} ({len(text.encode())} bytes)")
    chain = " -> ".join(f"{layer['kind']}{list(s)}" for layer, s in zip(CNN_LAYERS, info["layer_shapes"]))
    print(f"  shapes: {list(CNN_INPUT_SHAPE)} -> {chain}")
    print("  tensors: " + ", ".join(f"{n} {d}{list(s)}" for n, (d, _, s) in CNN_STATE_DICT.items()))
    print(f"  output {doc['output']['shape']}, |output| in [{np.min(np.abs(doc['output']['data'])):.4g}, "
          f"{np.max(np.abs(doc['output']['data'])):.4g}]")
    print(f"  weight draws: {info['attempts']}; float32 forward error {info['err32']:.3e} "
          f"(pure relative {info['err32_pure']:.3e}; tolerance {INTEROP_RTOL:g} * max(1, |ref|))")
    kinks, pools = info["report"]
    for i, kind, m, neg, pos, dead in kinks:
        print(f"  layer {i} ({kind}): min |pre| {m:.3e}, {neg} neg / {pos} pos, {dead} units negative on the whole batch")
    for i, gap, exempt in pools:
        print(f"  layer {i} (max_pool): min top-2 gap {gap:.3e}"
              + (f", {exempt} all-zero windows after relu (exempt)" if exempt else ""))


def check_cnn_pair(st_path, json_path, rtol, label):
    """Reads a CNN state_dict file + JSON (input, output), rebuilds the network
    from the file and asserts its float64 outputs match the JSON output:
    |ref - json| <= rtol * max(1, |ref|)."""
    sd, metadata = load_cnn_state_dict(st_path)
    doc = json.loads(Path(json_path).read_text())
    x = json_tensor(doc, "input", json_path)
    want = json_tensor(doc, "output", json_path)
    assert x.ndim == 4 and x.shape[1:] == CNN_INPUT_SHAPE and x.shape[0] >= 1, (
        f"{json_path}: input shape {list(x.shape)}, expected [batch, 1, 8, 8]"
    )
    assert want.shape == (x.shape[0], 3), f"{json_path}: output shape {list(want.shape)}, expected [{x.shape[0]}, 3]"
    got = cnn_reference_outputs(sd, x, label)
    err = rel_err(want, got)
    assert err <= rtol, (
        f"{label}: outputs from {Path(st_path).name} (JAX, float64) differ from {Path(json_path).name}: "
        f"max |diff| / max(1, |ref|) = {err:.3e} > {rtol:g}\n  jax:  {got.tolist()}\n  json: {want.tolist()}"
    )
    print(f"  {label}: {Path(st_path).name} names/dtypes/shapes OK (metadata {metadata}), "
          f"bn.num_batches_tracked = {int(sd['bn.num_batches_tracked'])}; batch {x.shape[0]}; "
          f"outputs match {Path(json_path).name}: max rel err {err:.3e} <= {rtol:g}")
    return sd, doc


def check_interop():
    """The interop checks (asserts). Run after writing the fixtures, or alone
    with --check-interop."""
    cnn_check_spec()
    print("\ninterop (PyTorch-style safetensors):")
    # 1. Our own file: strict format, exact values, outputs reproducible.
    sd, doc = check_cnn_pair(JAX_CNN_ST, JAX_CNN_JSON, 1e-12, "jax_cnn")
    for group in ("params", "buffers"):
        for name, t in doc[group].items():
            assert np.array_equal(sd[name].astype(np.float64), np.asarray(t["data"]).reshape(t["shape"])), name
    assert int(sd["bn.num_batches_tracked"]) == doc["num_batches_tracked"]
    x = json_tensor(doc, "input", JAX_CNN_JSON)
    assert np.array_equal(x.astype(np.float32).astype(np.float64), x), "jax_cnn: input not float32-representable"

    # 2. The file staticnet saved (written by a Rust test; may not exist yet).
    present = [p.exists() for p in (STATICNET_CNN_ST, STATICNET_CNN_JSON)]
    if not any(present):
        print(f"  staticnet_cnn: skipped: not present yet ({STATICNET_CNN_ST.relative_to(REPO_ROOT)} and "
              f"{STATICNET_CNN_JSON.relative_to(REPO_ROOT)} are written by the Rust interop test)")
        return
    assert all(present), (
        f"only one of {STATICNET_CNN_ST.name} / {STATICNET_CNN_JSON.name} exists; need both or neither"
    )
    check_cnn_pair(STATICNET_CNN_ST, STATICNET_CNN_JSON, INTEROP_RTOL, "staticnet_cnn")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate staticnet's JAX reference fixtures (tests/fixtures/).")
    ap.add_argument(
        "--check-interop",
        action="store_true",
        help="write nothing; only check jax_cnn.safetensors/.json and, if present, "
        "staticnet_cnn.safetensors/.json (PyTorch state_dict names, dtypes, shapes; outputs)",
    )
    args = ap.parse_args(argv)
    print(
        f"jax {jax.__version__}, numpy {np.__version__}, safetensors {safetensors.__version__}, "
        f"x64={jax.config.jax_enable_x64}"
    )
    if args.check_interop:
        check_interop()
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for spec in FIXTURES:
        doc, info = build_fixture(spec)
        text = to_json(doc) + "\n"
        # Round-trip check: the file must parse back to exactly the same values.
        assert json.loads(text) == json.loads(json.dumps(doc)), spec["name"]
        if spec["name"] in EXPECT_PARAM_NAMES:
            assert list(doc["params"]) == EXPECT_PARAM_NAMES[spec["name"]], (spec["name"], list(doc["params"]))
            assert list(doc["grads"]) == EXPECT_PARAM_NAMES[spec["name"]], spec["name"]
        for (fname, pname), pshape in EXPECT_PARAM_SHAPES.items():
            if fname == spec["name"]:
                assert doc["params"][pname]["shape"] == pshape, (fname, pname)
        path = OUT_DIR / f"{spec['name']}.json"
        path.write_text(text)

        gnorm = math.sqrt(sum(sum(v * v for v in g["data"]) for g in doc["grads"].values()))
        print(f"\n{path.relative_to(REPO_ROOT)} ({len(text.encode())} bytes)")
        if "input_shape" in doc:
            chain = " -> ".join(
                f"{layer['kind']}{list(s)}" for layer, s in zip(doc["layers"], info["layer_shapes"])
            )
            print(f"  shapes: {doc['input_shape']} -> {chain}")
        shapes = ", ".join(f"{k}{v['shape']}" for k, v in doc["params"].items())
        print(f"  params: {shapes}")
        if "buffers" in doc:
            print(f"  buffers ({doc['mode']} mode): {', '.join(doc['buffers'])}")
        print(f"  output {doc['output']['shape']}, loss {doc['loss_value']:.12g}, |grad| {gnorm:.6g}")
        print(
            f"  weight draws: {info['attempts']}; fd-checked {info['fd_checked']} entries, "
            f"worst |diff|/tol = {info['fd_worst_ratio']:.3f}"
        )
        for i, kind, m, neg, pos, dead in info["kinks"]:
            print(
                f"  layer {i} ({kind}): min |pre| {m:.3e}, "
                f"{neg} neg / {pos} pos, {dead} units negative on the whole batch"
            )
        for i, gap, exempt in info["pools"]:
            print(
                f"  layer {i} (max_pool): min top-2 gap {gap:.3e}"
                + (f", {exempt} all-zero windows after relu (exempt)" if exempt else "")
            )
    write_jax_cnn()
    check_interop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
