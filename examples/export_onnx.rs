//! Exports a model saved by the `mnist`, `mnist_cnn` or `mnist_resnet` example to ONNX.
//!
//! ```text
//! cargo run --release --example mnist_cnn
//! cargo run --release --example export_onnx -- target/mnist_cnn/model.safetensors digits.onnx --network cnn
//! ```
//! The file (opset 17) takes `input` `[batch, 784]` (mlp) or `[batch, 1, 28, 28]`
//! (cnn, resnet) pixels scaled as the examples scale them, and gives `output`
//! `[batch, 10]` logits: ONNX Runtime, tract, OpenVINO… can serve it.
//!
//! `--reference N` also writes `OUT.json` beside it: the first `N` test digits of
//! the bundled MNIST and staticnet's outputs for them, which
//! `tools/check_onnx.py --no-run --dir DIR` compares with ONNX Runtime's
//! (`tools/check_onnx.py --examples` exports and checks the three models).

mod common;

use common::{Digits, Mlp, SmallResNet};
use staticnet::data::{idx, mnist};
use staticnet::onnx::Export;
use staticnet::prelude::*;
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: export_onnx MODEL.safetensors OUT.onnx --network mlp|cnn|resnet [--reference N]";

/// Writes `net`'s ONNX file to `out` and, with `reference` digits, `out.json`.
fn write<N>(net: &N, out: &Path, reference: Option<usize>) -> Result<(), String>
where
    N: Network<f32, { mnist::PIXELS }, { mnist::CLASSES }> + Export<f32>,
{
    net.save_onnx(out).map_err(|e| e.to_string())?;
    let Some(n) = reference else { return Ok(()) };
    let path = common::default_data().join("t10k-images-idx3-ubyte.gz");
    let all =
        idx::read(&path).and_then(|a| mnist::images_from_idx::<f32>(&a, &path)).map_err(|e| e.to_string())?;
    let x = all.columns(0, n.clamp(1, all.ncols())).into_owned();
    let y = net.forward(&x);
    let list = |v: &[f32]| v.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(",");
    let dims = net.onnx_input_dims().iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
    let json = format!(
        "{{\"dims\":[{dims}],\"batch\":{},\"input\":[{}],\"output\":[{}]}}",
        x.ncols(),
        list(x.as_slice()),
        list(y.as_slice())
    );
    let json_path = out.with_extension("json");
    std::fs::write(&json_path, json).map_err(|e| format!("{}: {e}", json_path.display()))
}

/// Loads the weights into the named network and writes its ONNX file.
fn export(network: &str, weights: &Path, out: &Path, reference: Option<usize>) -> Result<(), String> {
    let loaded = |e: staticnet::Error| e.to_string();
    match network {
        "mlp" => write(&Mlp::<f32>::load(weights).map_err(loaded)?, out, reference),
        "cnn" => write(&Digits::<f32>::load(weights).map_err(loaded)?, out, reference),
        "resnet" => write(&SmallResNet::<f32>::load(weights).map_err(loaded)?, out, reference),
        other => Err(format!("unknown network `{other}`\n{USAGE}")),
    }
}

/// Removes `--flag VALUE` from `args` and returns the value.
fn take(args: &mut Vec<String>, flag: &str) -> Result<Option<String>, String> {
    let Some(at) = args.iter().position(|a| a == flag) else { return Ok(None) };
    if at + 1 >= args.len() {
        return Err(format!("{flag} needs a value\n{USAGE}"));
    }
    let value = args.remove(at + 1);
    args.remove(at);
    Ok(Some(value))
}

fn run() -> Result<String, String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let network = take(&mut args, "--network")?.ok_or_else(|| USAGE.to_string())?;
    let reference = match take(&mut args, "--reference")? {
        Some(n) => Some(n.parse::<usize>().map_err(|e| format!("--reference: {e}"))?),
        None => None,
    };
    let [weights, out] = args.as_slice() else { return Err(USAGE.into()) };
    export(&network, Path::new(weights), Path::new(out), reference)?;
    Ok(format!("wrote {out} ({network}, opset {})", staticnet::onnx::OPSET))
}

fn main() -> ExitCode {
    match run() {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
