//! Sequence networks (issue 19): `network!` on rank-2 inputs `[steps, features]`,
//! with `conv1d`, `lstm`, `gru`, `last`, `attention`, `positional`, pools over
//! steps and `dense`/`layer_norm`/`softmax` at every step. Shapes, parameter
//! names (PyTorch's), what the per-step layers compute, causality, and
//! finite-difference gradient checks of whole networks in f64 (parameters and
//! the input gradient).

use staticnet::gradcheck::{check_network, numeric_grad};
use staticnet::prelude::*;

network! {
    /// Issue 19's `Rows`: digits as 28 steps of 28 pixels.
    pub struct Rows {
        input: [28, 28],
        conv: conv1d(32, kernel = 3, padding = 1), relu,
        rnn: lstm(64),
        gru1: gru(32),
        last,
        head: dense(10),
        output: [10],
    }
}

network! {
    /// `Rows` at small sizes, for the finite-difference check of every parameter.
    struct SmallRows {
        input: [6, 5],
        conv: conv1d(4, kernel = 3, padding = 1), relu,
        rnn: lstm(6),
        gru1: gru(5),
        last,
        head: dense(3),
    }
}

network! {
    /// A pre-LN transformer block on float inputs, with a head at every step.
    struct Block {
        input: [16, 32],
        residual { layer_norm, attention(heads = 4, causal) },
        residual { layer_norm, dense(64), gelu, dense(32) },
        layer_norm,
        dense(10) => [16, 10],
        output: [16, 10],
    }
}

network! {
    /// Every other rank-2 form: positional, `same` padding, pools over steps,
    /// blocks on rank 2 (a projection at every step), softmax per step,
    /// non-causal attention, flatten.
    struct EverySequenceLayer {
        input: [8, 4],
        pos: positional,
        c: conv1d(6, kernel = 3, padding = same, bias = false), tanh,
        max_pool(2) => [4, 6],
        p: parallel(add) { branch { dense(5) } branch { gru(5) } },
        r: residual(projection) { lstm(3), sigmoid },
        softmax,
        avg_pool(2, stride = 1) => [3, 3],
        ln: layer_norm,
        att: attention(heads = 3),
        flatten => [9],
        head: dense(2),
    }
}

network! {
    /// A strided, dilated convolution and the mean over steps.
    struct ConvMean {
        input: [7, 3],
        gelu,
        conv1d(3 -> 5, kernel = 2, stride = 2, padding = 1, dilation = 2) => [4, 5],
        global_avg_pool => [5],
        dense(2),
    }
}

network! {
    /// `dense` and `layer_norm` at every step, small enough to compute by hand.
    struct PerStepDense {
        input: [3, 2],
        fc: dense(2 -> 4),
        norm: layer_norm,
    }
}

network! {
    /// A sequence network to nest.
    struct Encoder {
        input: [6, 4],
        lstm(5),
    }
}

network! {
    /// A rank-2 nested network: its `=> [6, 5]` is checked by the compiler.
    struct WithEncoder {
        input: [6, 4],
        enc: Encoder => [6, 5],
        last,
        head: dense(2),
    }
}

network! {
    /// `softmax` on `[T, F]`: over each step's features.
    struct StepSoftmax {
        input: [3, 4],
        softmax,
    }
}

network! {
    /// `dense, relu` at every step (never fused), then `relu, flatten, dense`
    /// (fused backward through the flattened view).
    struct PerStepRelu {
        input: [4, 3],
        dense(5), relu,
        dense(2), relu,
        flatten,
        dense(2),
    }
}

network! {
    /// A sequence network with a size parameter after its steps end.
    struct SizedHead<const CLASSES: usize = 3> {
        input: [5, 4],
        gru(6),
        global_avg_pool,
        head: dense(CLASSES),
    }
}

const TOL: f64 = 1e-6;

fn inputs<const N: usize>(batch: usize) -> Batch<f64, N> {
    Batch::from_fn(batch, |i, j| ((i * 7 + j * 3) as f64 * 0.713).sin() * 1.5)
}

fn names_and_shapes<T: Float, N: Params<T>>(net: &N) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| out.push((p.name.to_string(), p.shape.to_vec())));
    out
}

/// Zero biases put ReLU inputs on the kink; small distinct values avoid it.
fn jitter_biases<N: Params<f64>>(net: &mut N) {
    let mut k = 0.0;
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        if p.name.last().ends_with("bias") {
            for v in p.value.iter_mut() {
                k += 1.0;
                *v = 0.3 * (k * 1.37f64).sin();
            }
        }
    });
}

/// The gradient with respect to the input, against central differences of the loss.
fn check_input_gradient<Net, L, const IN: usize, const OUT: usize>(
    net: &mut Net,
    loss: &L,
    x: &Batch<f64, IN>,
    target: &L::Target,
) where
    Net: Network<f64, IN, OUT>,
    L: Loss<f64, OUT>,
{
    let mut trace = Net::Trace::default();
    let mut d_out = Batch::zeros(0);
    let mut grads = net.zero_gradients();
    let mut dx = Batch::<f64, IN>::zeros(0);
    let out = net.forward_train(x, &mut trace);
    loss.loss_and_grad(out, target, &mut d_out).expect("valid targets");
    net.backward(x, &mut trace, &d_out, &mut grads, Some(&mut dx));
    let numeric = numeric_grad(x.as_slice(), |v| {
        let probe_x = Batch::<f64, IN>::from_column_slice(v);
        let mut probe = Net::Trace::default();
        loss.loss(net.forward_train(&probe_x, &mut probe), target).expect("valid targets")
    });
    for (i, (a, n)) in dx.as_slice().iter().zip(&numeric).enumerate() {
        let err = (a - n).abs() / a.abs().max(n.abs()).max(1.0);
        assert!(err <= TOL, "dx[{i}]: analytic {a}, numeric {n}");
    }
}

#[test]
fn rows_has_issue_19s_shapes_and_pytorch_names() {
    assert_eq!(Rows::INPUT_SHAPE, [28, 28]);
    assert_eq!(Rows::OUTPUT_SHAPE, [10]);
    let shapes: Vec<&[usize]> = Rows::LAYERS.iter().map(|l| l.output_shape).collect();
    assert_eq!(shapes, [&[28, 32][..], &[28, 32], &[28, 64], &[28, 32], &[32], &[10]]);
    let kinds: Vec<&str> = Rows::LAYERS.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        [
            "conv1d(28 -> 32, kernel = 3, padding = 1)",
            "relu",
            "lstm(32 -> 64)",
            "gru(64 -> 32)",
            "last",
            "dense(32 -> 10)"
        ]
    );
    let net = Rows::new(1);
    let names = names_and_shapes(&net);
    let expected: Vec<(&str, Vec<usize>)> = vec![
        ("conv.weight", vec![32, 28, 3]),
        ("conv.bias", vec![32]),
        ("rnn.weight_ih_l0", vec![256, 32]),
        ("rnn.weight_hh_l0", vec![256, 64]),
        ("rnn.bias_ih_l0", vec![256]),
        ("rnn.bias_hh_l0", vec![256]),
        ("gru1.weight_ih_l0", vec![96, 64]),
        ("gru1.weight_hh_l0", vec![96, 32]),
        ("gru1.bias_ih_l0", vec![96]),
        ("gru1.bias_hh_l0", vec![96]),
        ("head.weight", vec![10, 32]),
        ("head.bias", vec![10]),
    ];
    let expected: Vec<(String, Vec<usize>)> = expected.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
    assert_eq!(names, expected);
    let count: usize = names.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    assert_eq!(Rows::PARAM_COUNT, count);
    assert_eq!(count, 32 * 28 * 3 + 32 + 4 * 64 * (32 + 64 + 2) + 3 * 32 * (64 + 32 + 2) + 330);
    // A forward pass over a batch of 3 digits' rows gives finite logits.
    let x = Batch::<f32, 784>::from_fn(3, |i, j| ((i + 5 * j) % 17) as f32 / 17.0);
    let y = net.forward(&x);
    assert_eq!((y.nrows(), y.ncols()), (10, 3));
    assert!(y.iter().all(|v| v.is_finite()));
    let summary = Rows::summary();
    assert!(summary.contains("[28, 64]") && summary.contains("lstm(32 -> 64)"), "{summary}");
    assert!(Rows::to_dot().contains("[28, 28]"));
}

#[test]
fn rows_gradients_match_finite_differences() {
    let mut net = SmallRows::<f64>::init(Init::Glorot, 7);
    jitter_biases(&mut net);
    let x = inputs::<30>(3);
    let labels = vec![0, 2, 1];
    let worst = check_network(&mut net, &SoftmaxCrossEntropy, &x, &labels, TOL);
    assert!(worst < TOL, "{worst}");
    check_input_gradient(&mut net, &SoftmaxCrossEntropy, &x, &labels);
}

#[test]
fn the_transformer_block_has_pytorch_names_and_every_step_shaped() {
    let shapes: Vec<&[usize]> = Block::LAYERS.iter().map(|l| l.output_shape).collect();
    assert_eq!(shapes, [&[16, 32][..], &[16, 32], &[16, 32], &[16, 10]]);
    assert_eq!(Block::LAYERS[3].kind, "dense(32 -> 10)");
    let body: Vec<&str> = Block::LAYERS[0].children[0].iter().map(|l| l.kind).collect();
    assert_eq!(body, ["layer_norm", "attention(heads = 4, causal)"]);
    let net = Block::<f64>::zeros();
    let names = names_and_shapes(&net);
    let expected: Vec<(&str, Vec<usize>)> = vec![
        ("0.body.0.weight", vec![32]),
        ("0.body.0.bias", vec![32]),
        ("0.body.1.in_proj_weight", vec![96, 32]),
        ("0.body.1.in_proj_bias", vec![96]),
        ("0.body.1.out_proj.weight", vec![32, 32]),
        ("0.body.1.out_proj.bias", vec![32]),
        ("1.body.0.weight", vec![32]),
        ("1.body.0.bias", vec![32]),
        ("1.body.1.weight", vec![64, 32]),
        ("1.body.1.bias", vec![64]),
        ("1.body.3.weight", vec![32, 64]),
        ("1.body.3.bias", vec![32]),
        ("2.weight", vec![32]),
        ("2.bias", vec![32]),
        ("3.weight", vec![10, 32]),
        ("3.bias", vec![10]),
    ];
    let expected: Vec<(String, Vec<usize>)> = expected.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
    assert_eq!(names, expected);
    assert_eq!(Block::PARAM_COUNT, 3 * 64 + 4 * 32 * 33 + (32 * 64 + 64) + (64 * 32 + 32) + 330);
}

#[test]
fn the_transformer_block_gradients_match_finite_differences() {
    let mut net = Block::<f64>::init(Init::Glorot, 11);
    jitter_biases(&mut net);
    let x = inputs::<512>(2);
    let target = Batch::<f64, 160>::from_fn(2, |i, j| ((i + 3 * j) as f64 * 0.37).cos());
    let worst = check_network(&mut net, &MeanSquaredError, &x, &target, TOL);
    assert!(worst < TOL, "{worst}");
    check_input_gradient(&mut net, &MeanSquaredError, &x, &target);
}

/// Causal attention, and layers that act at each step alone, make the whole
/// block causal: changing step 9 changes no output before step 9.
#[test]
fn the_causal_block_never_looks_ahead() {
    let net = Block::<f64>::init(Init::Glorot, 12);
    let x = inputs::<512>(1);
    let mut later = x.clone();
    for f in 0..32 {
        later[(9 * 32 + f, 0)] += 0.5;
    }
    let (y, y_later) = (net.forward(&x), net.forward(&later));
    assert_eq!(y.as_slice()[..9 * 10], y_later.as_slice()[..9 * 10]);
    assert!(y.as_slice()[9 * 10..10 * 10] != y_later.as_slice()[9 * 10..10 * 10]);
}

#[test]
fn every_sequence_layer_backpropagates() {
    let mut net = EverySequenceLayer::<f64>::init(Init::Glorot, 5);
    jitter_biases(&mut net);
    let x = inputs::<32>(3);
    let labels = vec![1, 0, 1];
    check_network(&mut net, &SoftmaxCrossEntropy, &x, &labels, TOL);
    check_input_gradient(&mut net, &SoftmaxCrossEntropy, &x, &labels);
    let names: Vec<String> = names_and_shapes(&net).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "pos.weight",
            "c.weight",
            "p.0.0.weight",
            "p.0.0.bias",
            "p.1.0.weight_ih_l0",
            "p.1.0.weight_hh_l0",
            "p.1.0.bias_ih_l0",
            "p.1.0.bias_hh_l0",
            "r.body.0.weight_ih_l0",
            "r.body.0.weight_hh_l0",
            "r.body.0.bias_ih_l0",
            "r.body.0.bias_hh_l0",
            "r.projection.weight",
            "r.projection.bias",
            "ln.weight",
            "ln.bias",
            "att.in_proj_weight",
            "att.in_proj_bias",
            "att.out_proj.weight",
            "att.out_proj.bias",
            "head.weight",
            "head.bias",
        ]
    );
}

#[test]
fn strided_dilated_convolution_and_mean_backpropagate() {
    let mut net = ConvMean::<f64>::init(Init::Glorot, 9);
    jitter_biases(&mut net);
    let x = inputs::<21>(2);
    let target = Batch::<f64, 2>::from_fn(2, |i, j| (i + j) as f64 * 0.5);
    check_network(&mut net, &MeanSquaredError, &x, &target, TOL);
    check_input_gradient(&mut net, &MeanSquaredError, &x, &target);
}

/// `dense` on `[T, F]` is the same dense layer at every step (PyTorch's
/// `nn.Linear` on `[B, T, F]`), and `layer_norm` normalises each step alone.
#[test]
fn dense_and_layer_norm_act_at_every_step() {
    let mut net = PerStepDense::<f64>::zeros();
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        if p.name.to_string() == "fc.weight" {
            // [out, in] = [4, 2]
            p.value.copy_from_slice(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, -1.0]);
        } else if p.name.to_string() == "fc.bias" {
            p.value.copy_from_slice(&[0.5, 0.0, 0.0, 0.0]);
        }
    });
    let x = Batch::<f64, 6>::from_column_slice(&[1.0, 2.0, -1.0, 0.0, 3.0, 3.0]);
    let mut trace = Default::default();
    let _ = net.forward_train(&x, &mut trace);
    let fc: Vec<f64> = trace.out.fc.as_slice().to_vec();
    assert_eq!(fc, [1.5, 2.0, 3.0, 0.0, -0.5, 0.0, -1.0, -2.0, 3.5, 3.0, 6.0, 3.0]);
    // Each step normalised over its 4 features (PyTorch's biased variance, eps 1e-5).
    let y = net.forward(&x);
    for step in fc.chunks(4).zip(y.as_slice().chunks(4)) {
        let (h, out) = step;
        let mean = h.iter().sum::<f64>() / 4.0;
        let var = h.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
        for (v, o) in h.iter().zip(out) {
            assert!(((v - mean) / (var + 1e-5).sqrt() - o).abs() < 1e-12, "{h:?} -> {out:?}");
        }
    }
    let names: Vec<String> = names_and_shapes(&net).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["fc.weight", "fc.bias", "norm.weight", "norm.bias"]);
}

/// The f32 network trains: Adam steps on `SmallRows` fit a small batch.
#[test]
fn a_sequence_network_trains() {
    let mut net = SmallRows::new(3);
    let x = Batch::<f32, 30>::from_fn(8, |i, j| (((i * 3 + j * 7) % 11) as f32 / 11.0) - 0.5);
    let labels: Vec<usize> = (0..8).map(|j| j % 3).collect();
    let mut opt = Adam::new(0.01);
    let mut trace = Default::default();
    let mut grads = net.zero_gradients();
    let mut d_out = Batch::zeros(0);
    let mut losses = Vec::new();
    for _ in 0..200 {
        let out = net.forward_train(&x, &mut trace);
        losses.push(SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d_out).unwrap());
        net.backward(&x, &mut trace, &d_out, &mut grads, None);
        opt.step(&mut net, &grads).unwrap();
    }
    assert!(losses[199] < 0.25 * losses[0], "{:?}", &losses[..]);
}

#[test]
fn a_nested_sequence_network_backpropagates_under_its_name() {
    let mut net = WithEncoder::<f64>::init(Init::Glorot, 21);
    jitter_biases(&mut net);
    let x = inputs::<24>(3);
    let target = Batch::<f64, 2>::from_fn(3, |i, j| (i as f64 - j as f64) * 0.3);
    check_network(&mut net, &MeanSquaredError, &x, &target, TOL);
    check_input_gradient(&mut net, &MeanSquaredError, &x, &target);
    let names: Vec<String> = names_and_shapes(&net).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "enc.0.weight_ih_l0",
            "enc.0.weight_hh_l0",
            "enc.0.bias_ih_l0",
            "enc.0.bias_hh_l0",
            "head.weight",
            "head.bias"
        ]
    );
    assert_eq!(WithEncoder::LAYERS[0].output_shape, [6, 5]);
}

#[test]
fn softmax_on_a_sequence_is_per_step() {
    let x =
        Batch::<f64, 12>::from_column_slice(&[1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, -1.0, 5.0, 2.0, 0.5]);
    let y = StepSoftmax::<f64>::zeros().forward(&x);
    for (xs, ys) in x.as_slice().chunks(4).zip(y.as_slice().chunks(4)) {
        let total: f64 = xs.iter().map(|v| v.exp()).sum();
        for (xi, yi) in xs.iter().zip(ys) {
            assert!((xi.exp() / total - yi).abs() < 1e-12, "{xs:?} -> {ys:?}");
        }
    }
    let mut net = StepSoftmax::<f64>::zeros();
    let target = Batch::<f64, 12>::from_fn(2, |i, j| ((i * 5 + j) % 7) as f64 * 0.1);
    check_input_gradient(&mut net, &MeanSquaredError, &inputs::<12>(2), &target);
}

/// Sequence networks save and load under their PyTorch names, and a network of
/// another architecture refuses the file.
#[test]
fn sequence_networks_round_trip_through_safetensors() {
    let net = Block::<f64>::init(Init::Glorot, 31);
    let bytes = staticnet::persist::to_bytes(&net).unwrap();
    let mut loaded = Block::<f64>::zeros();
    staticnet::persist::load_from_bytes(&mut loaded, &bytes).unwrap();
    let x = inputs::<512>(2);
    assert_eq!(net.forward(&x), loaded.forward(&x));
    let rows = Rows::new(4);
    let mut other = Rows::zeros();
    staticnet::persist::load_from_bytes(&mut other, &staticnet::persist::to_bytes(&rows).unwrap()).unwrap();
    let x = Batch::<f32, 784>::from_fn(2, |i, j| ((i * 3 + j) % 13) as f32 / 13.0);
    assert_eq!(rows.forward(&x), other.forward(&x));
    assert!(staticnet::persist::load_from_bytes(&mut SmallRows::<f32>::zeros(), &bytes).is_err());
}

#[test]
fn per_step_dense_and_relu_backpropagate() {
    let mut net = PerStepRelu::<f64>::init(Init::He, 41);
    jitter_biases(&mut net);
    let x = inputs::<12>(3);
    let target = Batch::<f64, 2>::from_fn(3, |i, j| (i * 2 + j) as f64 * 0.25);
    check_network(&mut net, &MeanSquaredError, &x, &target, TOL);
    check_input_gradient(&mut net, &MeanSquaredError, &x, &target);
    // Inference (`forward`, `infer`) agrees with the training pass.
    let mut trace = Default::default();
    let train = net.forward_train(&x, &mut trace).clone();
    let mut infer_trace = Default::default();
    assert_eq!(net.forward(&x), train);
    assert_eq!(*net.infer(&x, &mut infer_trace), train);
}

#[test]
fn a_sequence_network_takes_size_parameters_after_its_steps() {
    assert_eq!(SizedHead::<7>::OUTPUT_SHAPE, [7]);
    assert_eq!(SizedHead::<3>::PARAM_COUNT, 3 * 6 * (4 + 6 + 2) + 6 * 3 + 3);
    let mut net = SizedHead::<2, f64>::init(Init::Glorot, 2);
    jitter_biases(&mut net);
    let target = Batch::<f64, 2>::from_fn(2, |i, j| (i + j) as f64);
    check_network(&mut net, &MeanSquaredError, &inputs::<20>(2), &target, TOL);
}

network! {
    /// An embedding right before an LSTM: `network!` runs the two as one call
    /// (the input projection from a table of one column per token id).
    struct TokenLstm { input: tokens[4], embed: embedding(6 -> 3), rnn: lstm(4), head: dense(6) }
}

network! {
    /// The same with a GRU, and a layer between the recurrent layer and the head.
    struct TokenGru { input: tokens[4], embed: embedding(6 -> 3), rnn: gru(4), tanh, head: dense(6) }
}

/// `batch` windows of 4 ids below 6, some repeated, some never used (5).
fn token_ids(batch: usize) -> Batch<f64, 4> {
    Batch::from_fn(batch, |i, j| ((i * 3 + j * 2 + i * j) % 5) as f64)
}

/// The finite-difference check of every parameter (the embedding table's too)
/// on a batch of 3 windows (12 tokens for 6 ids: the fused per-token path) and
/// of 1 (4 tokens: the layers one by one); `forward`, `infer` and
/// `forward_train` give the same bits.
fn check_token_network<N: Network<f64, 4, 24> + Params<f64>>(mut net: N, what: &str) {
    jitter_biases(&mut net);
    for batch in [3, 1] {
        let x = token_ids(batch);
        let labels: StepLabels<4> = (0..batch).map(|b| std::array::from_fn(|t| (b + 2 * t) % 6)).collect();
        let worst = check_network(&mut net, &SequenceCrossEntropy::<4, 6>, &x, &labels, TOL);
        assert!(worst > 0.0, "{what}: nothing was compared");
        let (mut trace, mut train) = (N::Trace::default(), N::Trace::default());
        let inferred = net.infer(&x, &mut trace).clone();
        assert_eq!(net.forward(&x), inferred, "{what}: forward and infer differ");
        assert_eq!(net.forward_train(&x, &mut train), &inferred, "{what}: forward_train and infer differ");
    }
}

#[test]
fn an_embedding_fused_into_a_recurrent_layer_backpropagates() {
    check_token_network(TokenLstm::<f64>::new(3), "embedding, lstm");
    check_token_network(TokenGru::<f64>::new(4), "embedding, gru");
}
