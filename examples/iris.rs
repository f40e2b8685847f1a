//! Trains a small MLP on the Iris flowers from a CSV file and prints a classification report.
//!
//! ```text
//! cargo run --release --example iris                   # data/iris.csv
//! cargo run --release --example iris -- FILE.csv       # any CSV of 4 measurements and a `species` column
//! ```
//!
//! The whole pipeline without a hand-written loop: read the CSV (labels as integers or names),
//! split 80/20 with a seed, standardise with the training part's statistics, train, and report
//! accuracy, a confusion matrix and per-class precision, recall and F1.

use staticnet::data::CsvReader;
use staticnet::metrics::confusion_matrix;
use staticnet::prelude::*;
use std::process::ExitCode;

network! {
    /// Four measurements to three species.
    pub struct Iris {
        input: [4],
        fc1: dense(16), relu,
        head: dense(3),
        output: [3],
    }
}

fn main() -> ExitCode {
    let path = std::env::args().nth(1).unwrap_or_else(|| "data/iris.csv".into());
    match run(&path) {
        Ok(accuracy) => {
            println!("test accuracy {:.1}%", 100.0 * accuracy);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &str) -> staticnet::Result<f64> {
    let (data, classes) = CsvReader::new(path).target("species").classification::<f32, 4>()?;
    let (mut train, mut test) = data.split(0.8, 42)?;
    let scaler = train.standardize();
    scaler.apply(&mut test);

    let mut net = Iris::new(42);
    Trainer::new(Adam::new(1e-2)).epochs(60).batch_size(16).seed(42).verbose(false).fit(
        &mut net,
        &SoftmaxCrossEntropy,
        &train,
        Some(&test),
    )?;

    let matrix = confusion_matrix(&net, &test, 64)?;
    println!("{} training and {} test flowers, classes {:?}\n", train.len(), test.len(), classes.names());
    println!("{}", matrix.report().named(&classes));
    Ok(matrix.accuracy())
}
