#!/usr/bin/env python3
"""Checks staticnet's ONNX exports with the ONNX project's own tools.

Runs the onnx-tests package with STATICNET_ONNX_DUMP set, so every network the
tests export is written with its input and staticnet's output; then, for each
file, `onnx.checker.check_model(full_check=True)` (schema and shape inference)
and ONNX Runtime's output against staticnet's (1e-5 of the output's scale).

    tools/.venv/bin/pip install -r tools/requirements-onnx.txt
    tools/.venv/bin/python tools/check_onnx.py [--dir DIR] [--no-run]

With `--examples`, checks instead the exports of the examples' trained models
(target/mnist, target/mnist_cnn, target/mnist_resnet: train them first, e.g.
`cargo run --release --example mnist -- --epochs 1`): `export_onnx --reference 64`
writes each file with the first 64 test digits and staticnet's outputs.

Not needed by the tests (tract runs the exports inside `cargo test`).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent


def export(directory: pathlib.Path) -> None:
    env = dict(os.environ, STATICNET_ONNX_DUMP=str(directory))
    cmd = ["cargo", "test", "-j", "1", "-p", "staticnet-onnx-tests", "--quiet"]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


EXAMPLES = {"mlp": "mnist", "cnn": "mnist_cnn", "resnet": "mnist_resnet"}


def export_examples(directory: pathlib.Path) -> None:
    for network, example in EXAMPLES.items():
        model = ROOT / "target" / example / "model.safetensors"
        if not model.exists():
            sys.exit(f"{model} is missing: cargo run --release --example {example} -- --epochs 1")
        out = directory / f"example_{network}.onnx"
        cmd = ["cargo", "run", "-j", "1", "--release", "--quiet", "--example", "export_onnx", "--",
               str(model), str(out), "--network", network, "--reference", "64"]
        subprocess.run(cmd, cwd=ROOT, check=True)


def check(onnx_path: pathlib.Path) -> float:
    """Returns the largest error relative to the output's scale."""
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17, "opset 17 or later"
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch", "a dynamic batch dimension"
    ref = json.loads(onnx_path.with_suffix(".json").read_text())
    x = np.asarray(ref["input"], dtype=np.float32).reshape([ref["batch"], *ref["dims"]])
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (y,) = session.run(["output"], {"input": x})
    ours = np.asarray(ref["output"], dtype=np.float32)
    scale = max(1.0, float(np.abs(ours).max()))
    return float(np.abs(y.reshape(-1) - ours).max()) / scale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=pathlib.Path, help="where the exports go (default: a temporary directory)")
    parser.add_argument("--no-run", action="store_true", help="check the files already in --dir")
    parser.add_argument("--examples", action="store_true",
                        help="export and check the examples' trained models instead of the tests' networks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or pathlib.Path(tmp)
        if args.examples:
            export_examples(directory)
        elif not args.no_run:
            export(directory)
        files = sorted(directory.glob("*.onnx"))
        if not files:
            print("no exports found", file=sys.stderr)
            return 1
        worst = 0.0
        failed = 0
        for f in files:
            try:
                err = check(f)
            except Exception as e:  # noqa: BLE001 - report every file, then fail
                print(f"FAIL {f.name}: {e}")
                failed += 1
                continue
            worst = max(worst, err)
            status = "ok  " if err <= 1e-5 else "FAIL"
            failed += err > 1e-5
            print(f"{status} {f.name}: checker passed, ONNX Runtime within {err:.2e} of staticnet")
        print(f"{len(files) - failed} passed, {failed} failed (onnx {onnx.__version__}, "
              f"onnxruntime {ort.__version__}, worst {worst:.2e})")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
