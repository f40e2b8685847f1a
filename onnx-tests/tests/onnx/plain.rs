//! The plain layers, blocks and nested networks; the examples' MNIST models on real digits.

use crate::support::{check, perturb, random_batch};
use staticnet::data::{idx, mnist};
use staticnet::onnx::Export;
use staticnet::prelude::*;
use std::path::Path;

#[allow(unused_imports)]
#[path = "../../../examples/common/mod.rs"]
mod common;
use common::{Digits, Mlp, SmallResNet};

/// The first `n` test digits of the bundled MNIST, as the examples feed them.
fn digits(n: usize) -> Batch<f32, 784> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist/t10k-images-idx3-ubyte.gz");
    let all =
        mnist::images_from_idx::<f32>(&idx::read(&path).expect("bundled MNIST"), &path).expect("images");
    all.columns(0, n).into_owned()
}

/// The class each sample's largest output names.
fn argmax(out: &[f32], classes: usize) -> Vec<usize> {
    out.chunks(classes)
        .map(|s| s.iter().enumerate().fold(0, |best, (k, v)| if *v > s[best] { k } else { best }))
        .collect()
}

#[test]
fn the_examples_networks_agree_on_real_digits_and_random_inputs() {
    let x = digits(32);
    let mut mlp = Mlp::<f32>::init(Init::Auto, 1);
    perturb(&mut mlp, 1);
    let out = check(&mlp, &x);
    assert_eq!(argmax(&out, 10), argmax(mlp.forward(&x).as_slice(), 10));
    check(&mlp, &random_batch::<784>(3, 2));

    let mut cnn = Digits::<f32>::init(Init::Auto, 2);
    perturb(&mut cnn, 2);
    check(&cnn, &x);
    check(&cnn, &random_batch::<784>(1, 3));

    let mut resnet = SmallResNet::<f32>::init(Init::Auto, 3);
    perturb(&mut resnet, 3);
    check(&resnet, &x.columns(0, 8).into_owned());
    check(&resnet, &random_batch::<784>(2, 4));
}

network! {
    /// Every activation, both norms on features, dropout.
    struct Activations {
        input: [12],
        fc: dense(16), leaky_relu(0.1),
        dense(16, bias = false), sigmoid,
        batch_norm, dense(16), tanh,
        norm: layer_norm, gelu,
        dropout(0.5), identity,
        dense(5), softmax,
    }
}

network! {
    /// The smooth activations and log_softmax (on features and on `[C, H, W]`).
    struct Smooth {
        input: [2, 3, 2],
        silu, elu(0.5), log_softmax,
        flatten, dense(8), selu, softplus, mish,
        dense(4), log_softmax,
    }
}

#[test]
fn every_activation_and_norm_on_features() {
    let mut net = Activations::<f32>::init(Init::Auto, 4);
    perturb(&mut net, 4);
    check(&net, &random_batch::<12>(5, 5));
    let mut smooth = Smooth::<f32>::init(Init::Auto, 5);
    perturb(&mut smooth, 5);
    check(&smooth, &random_batch::<12>(5, 6));
}

network! {
    /// Stride, padding (symmetric, `same` with an even kernel), dilation, no bias; both pools;
    /// norms and softmax on `[C, H, W]`; global average pooling.
    struct Convs {
        input: [2, 11, 10],
        conv2d(4, kernel = 3, stride = 2, padding = 1), relu,
        conv2d(5, kernel = [2, 3], padding = same, bias = false), batch_norm,
        conv2d(6, kernel = 3, dilation = 2, padding = 2), layer_norm,
        avg_pool(2, stride = 1), softmax,
        max_pool([2, 1], stride = [1, 2]),
        conv2d(3, kernel = 1),
        global_avg_pool,
        dense(4),
    }
}

#[test]
fn convolutions_pools_and_norms_on_images() {
    let mut net = Convs::<f32>::init(Init::Auto, 6);
    perturb(&mut net, 6);
    check(&net, &random_batch::<220>(3, 7));
}

network! {
    /// A network to nest.
    struct Inner {
        input: [6],
        a: dense(8), relu,
        b: dense(6),
    }
}

network! {
    /// Residual blocks (identity, dense projection, conv projection), parallel concat and add
    /// on features and channels, and a nested network.
    struct Blocks {
        input: [2, 6, 6],
        down: residual(projection) { conv2d(4, kernel = 3, stride = 2, padding = 1), relu },
        par: parallel(concat) {
            branch { conv2d(2, kernel = 1) }
            branch { conv2d(3, kernel = 3, padding = same), tanh }
        },
        flatten => [45],
        dense(6),
        inner: Inner => [6],
        block: residual { dense(6), relu, dense(6) },
        sum: parallel(add) { branch { dense(5) } branch { inner2: Inner => [6], dense(5) } },
        proj: residual(projection) { dense(3), sigmoid },
        cat: parallel(concat) { branch { dense(2) } branch { identity } },
    }
}

#[test]
fn residual_parallel_and_nested_blocks() {
    let mut net = Blocks::<f32>::init(Init::Auto, 8);
    perturb(&mut net, 8);
    check(&net, &random_batch::<72>(4, 9));
}

network! {
    /// A size parameter.
    struct Hidden<const HIDDEN: usize = 7> {
        input: [5],
        dense(HIDDEN), relu,
        dense(3),
    }
}

#[test]
fn size_parameters_and_f64_networks() {
    let mut net = Hidden::<9, f32>::init(Init::Auto, 10);
    perturb(&mut net, 10);
    check(&net, &random_batch::<5>(2, 11));

    // An f64 network is written in f32: tract's output is its f32 rounding.
    let wide = Mlp::<f64>::init(Init::Auto, 12);
    let bytes = wide.to_onnx_bytes().unwrap();
    let x = digits(4);
    let out = crate::support::run_tract(&bytes, &wide.onnx_input_dims(), x.as_slice(), 4).unwrap();
    let ours = wide.forward(&x.map(f64::from));
    for (a, b) in out.iter().zip(ours.iter()) {
        assert!((f64::from(*a) - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn the_file_names_its_input_output_and_parameters() {
    let net = Mlp::<f32>::init(Init::Auto, 0);
    let model = staticnet::onnx::build(&net).unwrap();
    assert_eq!(model.input, ("input".to_string(), vec![784]));
    assert_eq!(model.output, ("output".to_string(), vec![10]));
    let names: Vec<&str> = model.graph.initializers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "head.weight", "head.bias"]);
    let batch_norm = staticnet::onnx::build(&Digits::<f32>::init(Init::Auto, 0)).unwrap();
    let names: Vec<&str> = batch_norm.graph.initializers.iter().map(|t| t.name.as_str()).collect();
    assert!(names.iter().any(|n| n.ends_with(".running_var")), "{names:?}");

    // The batch is dynamic: one file runs at batch 1 and batch 5.
    let dir = std::env::temp_dir().join(format!("staticnet-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mlp.onnx");
    net.save_onnx(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for n in [1, 5] {
        let x = random_batch::<784>(n, 13);
        let out = crate::support::run_tract(&bytes, &[784], x.as_slice(), n).unwrap();
        assert_eq!(out.len(), 10 * n);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
