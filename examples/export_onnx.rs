//! Exports a model saved by the `mnist`, `mnist_cnn` or `mnist_resnet` example to ONNX.
//!
//! ```text
//! cargo run --release --example mnist_cnn
//! cargo run --release --example export_onnx -- target/mnist_cnn/model.safetensors digits.onnx --network cnn
//! ```
//! The file (opset 17) takes `input` `[batch, 784]` (mlp) or `[batch, 1, 28, 28]`
//! (cnn, resnet) pixels scaled as the examples scale them, and gives `output`
//! `[batch, 10]` logits: ONNX Runtime, tract, OpenVINO… can serve it.

mod common;

use common::{Digits, Mlp, SmallResNet};
use staticnet::prelude::*;
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: export_onnx MODEL.safetensors OUT.onnx --network mlp|cnn|resnet";

/// Loads the weights into the named network and writes its ONNX file.
fn export(network: &str, weights: &Path, out: &Path) -> Result<(), String> {
    let written = match network {
        "mlp" => Mlp::<f32>::load(weights).and_then(|net| net.save_onnx(out)),
        "cnn" => Digits::<f32>::load(weights).and_then(|net| net.save_onnx(out)),
        "resnet" => SmallResNet::<f32>::load(weights).and_then(|net| net.save_onnx(out)),
        other => return Err(format!("unknown network `{other}`\n{USAGE}")),
    };
    written.map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (network, rest): (Vec<&String>, Vec<&String>) = {
        let at = args.iter().position(|a| a == "--network");
        let network = at.and_then(|k| args.get(k + 1)).into_iter().collect();
        let rest = args.iter().enumerate().filter(|(k, _)| at.is_none_or(|a| *k != a && *k != a + 1));
        (network, rest.map(|(_, a)| a).collect())
    };
    let (Some(network), [weights, out]) = (network.first(), rest.as_slice()) else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    match export(network, Path::new(weights), Path::new(out)) {
        Ok(()) => {
            println!("wrote {out} ({network}, opset {})", staticnet::onnx::OPSET);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
