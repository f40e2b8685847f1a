//! Classifies digits with a model saved by the `mnist` or `mnist_cnn` example.
//!
//! ```text
//! cargo run --release --example mnist
//! cargo run --release --example predict -- target/mnist/model.safetensors data/samples/*.png
//! cargo run --release --example predict -- target/mnist_cnn/model.safetensors data/mnist/t10k-images-idx3-ubyte.gz
//! ```
//! Images are PNG files of 28×28 pixels (a white digit on black, like MNIST) or
//! IDX image files (every image in the file). Only inference runs: no trace,
//! no optimizer, no training state. `--int8` or `--bf16` (before the files)
//! quantizes the dense and conv weights first (`staticnet::quant`):
//!
//! ```text
//! cargo run --release --example predict -- --int8 target/mnist/model.safetensors data/samples/*.png
//! ```

mod common;

use common::{Digits, Mlp};
use staticnet::data::{idx, image, mnist};
use staticnet::prelude::*;
use staticnet::quant::{Bf16, Int8, Quantized};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Whichever of the examples' networks the file holds, as saved or quantized.
enum Model {
    Mlp(Mlp),
    Cnn(Box<Digits>),
    QuantizedMlp(Quantized<Mlp>),
    QuantizedCnn(Box<Quantized<Digits>>),
}

impl Model {
    fn load(path: &Path) -> Result<Model, String> {
        match Mlp::load(path) {
            Ok(net) => Ok(Model::Mlp(net)),
            Err(e @ staticnet::Error::Io { .. }) => Err(e.to_string()),
            Err(mlp) => match Digits::load(path) {
                Ok(net) => Ok(Model::Cnn(Box::new(net))),
                Err(cnn) => Err(format!(
                    "{} holds neither example network.\nAs the MLP: {mlp}\nAs the CNN: {cnn}",
                    path.display()
                )),
            },
        }
    }

    /// The model with its weights in int8 (`bf16 == false`) or bf16.
    fn quantized(self, bf16: bool) -> Model {
        match (self, bf16) {
            (Model::Mlp(net), false) => Model::QuantizedMlp(net.into_quantized::<Int8>()),
            (Model::Mlp(net), true) => Model::QuantizedMlp(net.into_quantized::<Bf16>()),
            (Model::Cnn(net), false) => Model::QuantizedCnn(Box::new(net.into_quantized::<Int8>())),
            (Model::Cnn(net), true) => Model::QuantizedCnn(Box::new(net.into_quantized::<Bf16>())),
            (quantized, _) => quantized,
        }
    }

    fn classify(&self, x: &Batch<f32, { mnist::PIXELS }>) -> Vec<Prediction<f32>> {
        match self {
            Model::Mlp(net) => net.classify(x),
            Model::Cnn(net) => net.classify(x),
            Model::QuantizedMlp(net) => net.classify(x),
            Model::QuantizedCnn(net) => net.classify(x),
        }
    }
}

/// The images of one file: an IDX file of 28×28 images, or one PNG.
fn images(path: &Path) -> staticnet::Result<Batch<f32, { mnist::PIXELS }>> {
    let is_png = std::fs::read(path).map(|b| b.starts_with(b"\x89PNG")).unwrap_or(false);
    if is_png {
        mnist::sample_from_image(&image::read_png(path)?, path)
    } else {
        mnist::images_from_idx(&idx::read(path)?, path)
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let scheme = args.iter().position(|a| a == "--int8" || a == "--bf16").map(|k| args.remove(k));
    let [model, files @ ..] = args.as_slice() else {
        eprintln!("usage: predict [--int8 | --bf16] MODEL.safetensors IMAGE.png|IMAGES.idx[.gz]...");
        return ExitCode::FAILURE;
    };
    let model = match Model::load(Path::new(model)) {
        Ok(m) if scheme.is_some() => m.quantized(scheme.as_deref() == Some("--bf16")),
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for file in files {
        let path = Path::new(file);
        match images(path) {
            Ok(x) => {
                for (k, p) in model.classify(&x).iter().enumerate() {
                    let which = if x.ncols() > 1 { format!("{file}[{k}]") } else { file.clone() };
                    if writeln!(out, "{which}: {} ({:.1}%)", p.class, 100.0 * p.probability).is_err() {
                        // The reader went away (e.g. `| head`): nothing more to say.
                        return ExitCode::SUCCESS;
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
