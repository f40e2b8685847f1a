//! Whole generated networks against finite differences, in f64.
//!
//! Central differences with step 1e-6 (see `staticnet::gradcheck`); every
//! parameter gradient must agree to 1e-6 relative (absolute below 1). Inputs
//! are kept away from ReLU kinks by construction of the data.

use staticnet::gradcheck::check_network;
use staticnet::prelude::*;

network! {
    struct EveryActivation {
        input: [5],
        dense(6), tanh,
        dense(6), sigmoid,
        dense(6), gelu,
        dense(6), leaky_relu(0.1),
        dense(6, bias = false), softmax,
        dense(4), identity,
    }
}

network! {
    /// The smooth activations of issue 20, and log_softmax at the end.
    struct SmoothActivations {
        input: [5],
        dense(6), silu,
        dense(6), elu(0.5),
        dense(6), selu,
        dense(6), softplus,
        dense(6), mish,
        dense(4), log_softmax,
    }
}

network! {
    struct ReluNet { input: [5], fc1: dense(7), relu, fc2: dense(6), relu, head: dense(3) }
}

network! {
    /// Starts with an activation, so the input gradient goes through it.
    struct ActivationFirst { input: [3], tanh, dense(2) }
}

fn inputs<const N: usize>(batch: usize) -> Batch<f64, N> {
    Batch::from_fn(batch, |i, j| ((i * 7 + j * 3) as f64 * 0.713).sin() * 1.5)
}

const TOL: f64 = 1e-6;

/// Biases start at zero, so a sample whose ReLU inputs are all negative puts
/// the next pre-activation exactly on the kink; small distinct biases avoid it.
fn jitter_biases<N: Params<f64>>(net: &mut N) {
    let mut k = 0.0;
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        if p.name.last() == "bias" {
            for v in p.value.iter_mut() {
                k += 1.0;
                *v = 0.3 * (k * 1.37f64).sin();
            }
        }
    });
}

#[test]
fn smooth_activations_under_mse() {
    let mut net = SmoothActivations::<f64>::init(Init::Glorot, 5);
    jitter_biases(&mut net);
    let target = Batch::<f64, 4>::from_fn(6, |i, j| -1.0 - ((i + j) as f64 * 0.37).cos());
    let worst = check_network(&mut net, &MeanSquaredError, &inputs(6), &target, TOL);
    assert!(worst < TOL, "{worst}");
}

#[test]
fn every_activation_under_mse() {
    let mut net = EveryActivation::<f64>::init(Init::Glorot, 3);
    jitter_biases(&mut net);
    let target = Batch::<f64, 4>::from_fn(6, |i, j| ((i + j) as f64 * 0.37).cos());
    let worst = check_network(&mut net, &MeanSquaredError, &inputs(6), &target, TOL);
    assert!(worst < TOL, "{worst}");
}

#[test]
fn relu_network_under_cross_entropy() {
    let mut net = ReluNet::<f64>::init(Init::He, 4);
    jitter_biases(&mut net);
    check_network(&mut net, &SoftmaxCrossEntropy, &inputs(8), &vec![0, 1, 2, 1, 0, 2, 2, 1], TOL);
}

#[test]
fn relu_network_under_binary_cross_entropy() {
    let mut net = ReluNet::<f64>::init(Init::He, 5);
    jitter_biases(&mut net);
    let target = Batch::<f64, 3>::from_fn(5, |i, j| if (i + j) % 2 == 0 { 1.0 } else { 0.25 });
    check_network(&mut net, &BinaryCrossEntropy, &inputs(5), &target, TOL);
}

#[test]
fn input_gradient_through_a_leading_activation() {
    let mut net = ActivationFirst::<f64>::init(Init::Glorot, 6);
    let x = inputs::<3>(4);
    let labels = vec![0, 1, 1, 0];
    let mut trace = Default::default();
    let mut d_out = Batch::zeros(0);
    let out = net.forward_train(&x, &mut trace);
    SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d_out).unwrap();
    let mut grads = net.zero_gradients();
    let mut d_input = Batch::zeros(0);
    net.backward(&x, &mut trace, &d_out, &mut grads, Some(&mut d_input));
    let numeric = staticnet::gradcheck::numeric_grad(x.as_slice(), |xs| {
        SoftmaxCrossEntropy.loss(&net.forward(&Batch::from_column_slice(xs)), &labels).unwrap()
    });
    staticnet::gradcheck::assert_close(d_input.as_slice(), &numeric, TOL, "input gradient");
}

#[test]
fn chained_networks_backpropagate_through_the_join() {
    network! { struct Encoder { input: [5], dense(4), tanh } }
    network! { struct Decoder { input: [4], dense(3) } }
    let mut net = Encoder::<f64>::init(Init::Glorot, 1).then(Decoder::<f64>::init(Init::Glorot, 2));
    check_network(&mut net, &SoftmaxCrossEntropy, &inputs(4), &vec![2, 0, 1, 1], TOL);
    let mut names = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| names.push(p.name.to_string()));
    assert_eq!(names, ["0.0.weight", "0.0.bias", "1.0.weight", "1.0.bias"]);
}

network! {
    /// Every conv-era layer with non-default options, in one network.
    struct EveryConvLayer {
        input: [2, 8, 8],
        c1: conv2d(3, kernel = 3, stride = 2, padding = 1), bn: batch_norm, tanh,
        c2: conv2d(4, kernel = 2, dilation = 2, padding = same, bias = false) => [4, 4, 4],
        max_pool(2) => [4, 2, 2],
        ln: layer_norm, gelu,
        avg_pool(2, stride = 1) => [4, 1, 1],
        flatten,
        head: dense(3),
    }
}

network! {
    struct GlobalPoolNet { input: [3, 5, 4], conv2d(2, kernel = [2, 3]), sigmoid, global_avg_pool, bn1d: batch_norm, dense(2) }
}

#[test]
fn whole_cnn_with_every_layer_in_training_mode() {
    let mut net = EveryConvLayer::<f64>::init(Init::Glorot, 11);
    jitter_biases(&mut net);
    let x = inputs::<128>(3);
    let worst = check_network(&mut net, &SoftmaxCrossEntropy, &x, &vec![0, 2, 1], TOL);
    assert!(worst < TOL);
}

#[test]
fn global_average_pool_and_rank1_batch_norm() {
    let mut net = GlobalPoolNet::<f64>::init(Init::Glorot, 12);
    let target = Batch::<f64, 2>::from_fn(4, |i, j| (i + 2 * j) as f64 * 0.3);
    check_network(&mut net, &MeanSquaredError, &inputs::<60>(4), &target, TOL);
}

network! {
    /// Residual blocks, with and without a projection, and both joins.
    struct Blocks {
        input: [2, 6, 6],
        stem: conv2d(3, kernel = 3, padding = 1), tanh,
        block: residual { conv2d(3, kernel = 3, padding = 1), tanh, conv2d(3, kernel = 3, padding = 1) }, tanh,
        down: residual(projection) { conv2d(4, kernel = 3, stride = 2, padding = 1), tanh } => [4, 3, 3],
        par: parallel(concat) {
            branch { conv2d(2, kernel = 3, padding = 1), tanh }
            branch { conv2d(1, kernel = 1), sigmoid }
        } => [3, 3, 3],
        flatten,
        fc: dense(5), gelu,
        sum: parallel(add) { branch { dense(3) } branch { dense(3), tanh } },
        r: residual(projection) { dense(4), tanh },
    }
}

#[test]
fn residual_blocks_and_parallel_branches() {
    let mut net = Blocks::<f64>::init(Init::Glorot, 21);
    jitter_biases(&mut net);
    let x = inputs::<72>(3);
    check_network(&mut net, &SoftmaxCrossEntropy, &x, &vec![0, 3, 1], TOL);
    let mut names = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| names.push(p.name.to_string()));
    assert_eq!(
        names,
        [
            "stem.weight",
            "stem.bias",
            "block.body.0.weight",
            "block.body.0.bias",
            "block.body.2.weight",
            "block.body.2.bias",
            "down.body.0.weight",
            "down.body.0.bias",
            "down.projection.weight",
            "down.projection.bias",
            "par.0.0.weight",
            "par.0.0.bias",
            "par.1.0.weight",
            "par.1.0.bias",
            "fc.weight",
            "fc.bias",
            "sum.0.0.weight",
            "sum.0.0.bias",
            "sum.1.0.weight",
            "sum.1.0.bias",
            "r.body.0.weight",
            "r.body.0.bias",
            "r.projection.weight",
            "r.projection.bias",
        ]
    );
    // The input gradient flows through every join too.
    let labels = vec![0, 3, 1];
    let mut trace = Default::default();
    let mut d_out = Batch::zeros(0);
    let out = net.forward_train(&x, &mut trace);
    SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d_out).unwrap();
    let mut grads = net.zero_gradients();
    let mut d_input = Batch::zeros(0);
    net.backward(&x, &mut trace, &d_out, &mut grads, Some(&mut d_input));
    let mut probe = net.clone();
    let numeric = staticnet::gradcheck::numeric_grad(x.as_slice(), |xs| {
        let mut t = Default::default();
        SoftmaxCrossEntropy.loss(probe.forward_train(&Batch::from_column_slice(xs), &mut t), &labels).unwrap()
    });
    staticnet::gradcheck::assert_close(d_input.as_slice(), &numeric, TOL, "input gradient");
}
