//! Quantized inference (`staticnet::quant`) end to end: the examples' MLP and CNN,
//! trained briefly on the bundled digits, keep their test accuracy within 0.5
//! percentage points in int8 and 0.1 in bf16; composite networks quantize every
//! dense and conv2d layer inside their blocks; the per-layer errors are small.

#[path = "../examples/common/mod.rs"]
mod common;

use common::{Digits, Mlp, SmallResNet};
use staticnet::prelude::*;
use staticnet::quant::{Bf16, Int8, Quantized};
use std::path::Path;

fn digits() -> mnist::Mnist<f32> {
    mnist::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")).expect("bundled data")
}

/// The share of `labels` that `predictions` gets right.
fn accuracy(predictions: &[Prediction<f32>], labels: &[usize]) -> f64 {
    let right = predictions.iter().zip(labels).filter(|(p, &l)| p.class == l).count();
    right as f64 / labels.len() as f64
}

/// Trains `net` briefly, then compares the test accuracy of f32, int8 and bf16.
fn check_accuracy<N>(mut net: N, train: usize, epochs: usize) -> [f64; 3]
where
    N: Network<f32, { mnist::PIXELS }, { mnist::CLASSES }> + Clone,
{
    let data = digits();
    Trainer::new(Adam::new(2e-3))
        .epochs(epochs)
        .batch_size(64)
        .seed(5)
        .verbose(false)
        .fit(&mut net, &SoftmaxCrossEntropy, &data.train.take(train), None)
        .unwrap();
    let (x, labels) = (data.test.features(), data.test.targets());
    let f32_accuracy = accuracy(&net.classify(x), labels);
    let int8: Quantized<N> = net.quantized::<Int8>();
    let bf16 = net.quantized::<Bf16>();
    let result = [f32_accuracy, accuracy(&int8.classify(x), labels), accuracy(&bf16.classify(x), labels)];
    eprintln!("test accuracy f32 / int8 / bf16: {result:?}");
    for layer in int8.layers() {
        assert!(layer.relative_error < 0.02, "int8 {layer:?}");
    }
    for layer in bf16.layers() {
        assert!(layer.relative_error < 2f64.powi(-8), "bf16 {layer:?}");
    }
    result
}

#[test]
fn the_example_mlp_keeps_its_accuracy_in_int8_and_bf16() {
    let [f32_acc, int8, bf16] = check_accuracy(Mlp::new(1), 4000, 2);
    assert!(f32_acc > 0.88, "{f32_acc}");
    assert!(int8 >= f32_acc - 0.005, "int8 {int8} vs f32 {f32_acc}");
    assert!(bf16 >= f32_acc - 0.001, "bf16 {bf16} vs f32 {f32_acc}");
}

#[test]
fn the_example_cnn_keeps_its_accuracy_in_int8_and_bf16() {
    let [f32_acc, int8, bf16] = check_accuracy(Digits::new(2), 2000, 1);
    assert!(f32_acc > 0.85, "{f32_acc}");
    assert!(int8 >= f32_acc - 0.005, "int8 {int8} vs f32 {f32_acc}");
    assert!(bf16 >= f32_acc - 0.001, "bf16 {bf16} vs f32 {f32_acc}");
}

#[test]
fn every_dense_and_conv_layer_inside_blocks_is_quantized() {
    let net = SmallResNet::new(3);
    let q = net.quantized::<Int8>();
    let names: Vec<&str> = q.layers().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stem.weight",
            "block1.body.0.weight",
            "block1.body.3.weight",
            "down.body.0.weight",
            "down.body.3.weight",
            "down.projection.weight",
            "head.weight"
        ]
    );
    let x = digits().test.features().columns(0, 8).into_owned();
    let (exact, approx) = (net.forward(&x), q.forward(&x));
    let error = (&exact - &approx).norm() / exact.norm();
    assert!(error > 0.0 && error < 0.05, "relative output error {error}");
    // Batch 1 takes the GEMV, batch 8 the panels: both agree with the f32 network.
    let one = q.forward(&x.columns(0, 1).into_owned());
    assert!((one.column(0) - approx.column(0)).norm() < 1e-4 * approx.column(0).norm());
    // An int8 network's weights take a quarter of the bytes (plus a scale per row).
    let f32_bytes: usize = q.layers().iter().map(|l| 4 * l.shape[0] * l.shape[1]).sum();
    assert!(q.weight_bytes() * 3 < f32_bytes, "{} of {f32_bytes}", q.weight_bytes());
}
