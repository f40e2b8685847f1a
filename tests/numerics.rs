//! Numerics at the extremes and the trainer's non-finite checks and gradient clipping.
//!
//! Losses and activations must stay finite (value and gradient) for logits of
//! ±1e4 and ±1e30 and for targets and probabilities at exactly 0 and 1, in f32
//! and f64. The trainer must stop on the first NaN/Inf with an error naming
//! where it appeared, before any weight or checkpoint changes.

use staticnet::prelude::*;
use staticnet::train::{clip_grad_norm, clip_grad_value, grad_norm};
use staticnet::NonFiniteAt;
use std::path::PathBuf;

// ---------------------------------------------------------------------------
// Losses and activations at the extremes

/// Logits every loss and activation must survive; `1e30` is representable in f32 too.
const EXTREMES: [f64; 8] = [1e4, -1e4, 1e30, -1e30, 0.0, 1e-30, -1e-30, 88.0];

fn all_finite<T: Float>(values: impl IntoIterator<Item = T>) -> bool {
    values.into_iter().all(|v| v.is_finite())
}

/// Every pair of extremes as the two logits of a sample, plus the extremes themselves.
fn pairs<T: Float>() -> Batch<T, 2> {
    let mut values = Vec::new();
    for &a in &EXTREMES {
        for &b in &EXTREMES {
            values.extend([T::cast(a), T::cast(b)]);
        }
    }
    Batch::from_column_slice(&values)
}

fn softmax_cross_entropy_at_extremes<T: Float>() {
    let z = pairs::<T>();
    let mut grad = Batch::zeros(0);
    for label in 0..2 {
        let labels = vec![label; z.ncols()];
        let loss = SoftmaxCrossEntropy.loss_and_grad(&z, &labels, &mut grad).unwrap();
        assert!(loss.is_finite(), "{}: label {label}: loss {loss}", T::DTYPE);
        assert!(all_finite(grad.iter().copied()), "{}: label {label}: gradient {grad}", T::DTYPE);
        // Each sample's gradient is (softmax − onehot) / n: in [−1/n, 1/n], summing to 0.
        let n = T::cast(z.ncols() as f64);
        for col in grad.column_iter() {
            assert!(col.iter().all(|&g| g.abs() <= T::one() / n + T::cast(1e-6)), "{col}");
            assert!(col.sum().abs() <= T::cast(1e-6), "{col}");
        }
    }
    // A confident right answer costs 0, a confident wrong one the logit gap, exactly.
    let z = Batch::<T, 3>::from_column_slice(&[T::cast(1e4), T::cast(-1e4), T::zero()]);
    assert_eq!(SoftmaxCrossEntropy.loss(&z, &vec![0]).unwrap(), T::zero());
    assert_eq!(SoftmaxCrossEntropy.loss(&z, &vec![1]).unwrap(), T::cast(2e4));
    let z = Batch::<T, 2>::from_column_slice(&[T::cast(1e30), T::cast(-1e30)]);
    assert_eq!(SoftmaxCrossEntropy.loss(&z, &vec![1]).unwrap(), T::cast(2e30));
}

fn binary_cross_entropy_at_extremes<T: Float>() {
    let z = pairs::<T>();
    let mut grad = Batch::zeros(0);
    for t in [0.0, 1.0, 0.5] {
        let target = Batch::<T, 2>::from_element(z.ncols(), T::cast(t));
        let loss = BinaryCrossEntropy.loss_and_grad(&z, &target, &mut grad).unwrap();
        assert!(loss.is_finite() && loss >= T::zero(), "{}: target {t}: loss {loss}", T::DTYPE);
        assert!(all_finite(grad.iter().copied()), "{}: target {t}: gradient {grad}", T::DTYPE);
        // (σ(z) − t) / n: within [−1/n, 1/n].
        let bound = T::one() / T::cast(z.len() as f64) + T::cast(1e-6);
        assert!(grad.iter().all(|g| g.abs() <= bound));
    }
    // Probabilities at exactly 0 and 1: right answers cost nothing, wrong ones |z|.
    let z = Batch::<T, 4>::from_column_slice(&[1e4, -1e4, 1e30, -1e30].map(T::cast));
    let right = Batch::<T, 4>::from_column_slice(&[1.0, 0.0, 1.0, 0.0].map(T::cast));
    let wrong = Batch::<T, 4>::from_column_slice(&[0.0, 1.0, 0.0, 1.0].map(T::cast));
    assert_eq!(BinaryCrossEntropy.loss(&z, &right).unwrap(), T::zero());
    let expected = T::cast((2e4 + 2e30) / 4.0);
    assert!((BinaryCrossEntropy.loss(&z, &wrong).unwrap() - expected).abs() <= expected * T::cast(1e-6));
    let mut grad = Batch::zeros(0);
    BinaryCrossEntropy.loss_and_grad(&z, &wrong, &mut grad).unwrap();
    assert_eq!(grad.as_slice(), &[0.25, -0.25, 0.25, -0.25].map(T::cast));
}

fn mean_squared_error_at_extremes<T: Float>() {
    let mut grad = Batch::zeros(0);
    for t in [0.0, 1.0] {
        // ±1e4 in both types; ±1e30 only in f64: (1e30)² = 1e60 exceeds f32's range,
        // so the f32 loss is +inf there, as the exact value would be.
        let big: &[f64] = if T::DTYPE == "F64" { &EXTREMES } else { &[1e4, -1e4, 0.0, 1e-30, 88.0] };
        let z = Batch::<T, 1>::from_column_slice(&big.iter().map(|&v| T::cast(v)).collect::<Vec<_>>());
        let target = Batch::<T, 1>::from_element(z.ncols(), T::cast(t));
        let loss = MeanSquaredError.loss_and_grad(&z, &target, &mut grad).unwrap();
        assert!(loss.is_finite(), "{}: target {t}: loss {loss}", T::DTYPE);
        assert!(all_finite(grad.iter().copied()), "{}: gradient {grad}", T::DTYPE);
    }
    // The gradient 2(z − t)/n stays finite even where the f32 loss overflows.
    let z = Batch::<T, 1>::from_column_slice(&[T::cast(1e30), T::cast(-1e30)]);
    MeanSquaredError.loss_and_grad(&z, &Batch::zeros(2), &mut grad).ok();
    assert_eq!(grad.as_slice(), &[T::cast(1e30), T::cast(-1e30)]);
}

/// Forward and backward of an activation over every extreme: finite, and in range.
fn activation_at_extremes<T: Float, A: Activation>(a: A, range: (f64, f64)) {
    let values: Vec<T> = EXTREMES.iter().flat_map(|&v| [T::cast(v), T::cast(-v)]).collect();
    let x = Batch::<T, 2>::from_column_slice(&values);
    let mut y = Batch::zeros(0);
    a.forward(&x, &mut y);
    assert!(all_finite(y.iter().copied()), "{} {}: forward {y}", A::NAME, T::DTYPE);
    assert!(
        y.iter().all(|v| v.as_f64() >= range.0 && v.as_f64() <= range.1),
        "{} {}: {y}",
        A::NAME,
        T::DTYPE
    );
    let mut in_place = x.clone();
    a.forward_in_place(&mut in_place);
    assert_eq!(in_place, y, "{}: in place", A::NAME);
    let dy = Batch::<T, 2>::from_element(x.ncols(), T::one());
    let mut dx = Batch::zeros(0);
    a.backward(&x, &y, &dy, &mut dx);
    assert!(all_finite(dx.iter().copied()), "{} {}: backward {dx}", A::NAME, T::DTYPE);
}

fn activations_at_extremes<T: Float>() {
    let inf = f64::INFINITY;
    activation_at_extremes::<T, _>(Sigmoid, (0.0, 1.0));
    activation_at_extremes::<T, _>(Tanh, (-1.0, 1.0));
    activation_at_extremes::<T, _>(Gelu, (-0.2, inf));
    activation_at_extremes::<T, _>(Softmax, (0.0, 1.0));
    activation_at_extremes::<T, _>(Relu, (0.0, inf));
    activation_at_extremes::<T, _>(LeakyRelu::default(), (-inf, inf));
    activation_at_extremes::<T, _>(Identity, (-inf, inf));
    // Saturation gives exactly 0 and 1, and the derivatives vanish instead of turning NaN.
    let x = Batch::<T, 2>::from_column_slice(&[T::cast(1e30), T::cast(-1e30)]);
    let mut y = Batch::zeros(0);
    Sigmoid.forward(&x, &mut y);
    assert_eq!(y.as_slice(), &[T::one(), T::zero()]);
    Softmax.forward(&x, &mut y);
    assert_eq!(y.as_slice(), &[T::one(), T::zero()]);
    Gelu.forward(&x, &mut y);
    assert_eq!(y[0], T::cast(1e30));
    assert_eq!(y[1], T::zero());
    let mut dx = Batch::zeros(0);
    Gelu.backward(&x, &y, &Batch::from_element(1, T::one()), &mut dx);
    assert_eq!(dx.as_slice(), &[T::one(), T::zero()]);
}

#[test]
fn losses_stay_finite_at_extreme_logits_and_targets_in_f32_and_f64() {
    softmax_cross_entropy_at_extremes::<f32>();
    softmax_cross_entropy_at_extremes::<f64>();
    binary_cross_entropy_at_extremes::<f32>();
    binary_cross_entropy_at_extremes::<f64>();
    mean_squared_error_at_extremes::<f32>();
    mean_squared_error_at_extremes::<f64>();
}

#[test]
fn activations_stay_finite_at_extreme_inputs_in_f32_and_f64() {
    activations_at_extremes::<f32>();
    activations_at_extremes::<f64>();
}

#[test]
fn a_non_finite_target_is_an_error_naming_the_sample() {
    let out = Batch::<f64, 2>::from_column_slice(&[0.5, -1.0, 2.0, 0.0]);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let target = Batch::<f64, 2>::from_column_slice(&[0.0, 1.0, 1.0, bad]);
        let mut grad = Batch::zeros(0);
        let mse = MeanSquaredError.loss(&out, &target).unwrap_err().to_string();
        assert_eq!(
            mse,
            format!("invalid setting: mean squared error target {bad} at sample 1, element 1 is not finite")
        );
        assert!(MeanSquaredError.loss_and_grad(&out, &target, &mut grad).is_err());
        assert!(Loss::<f64, 2>::validate(&MeanSquaredError, &target).is_err());
        let bce = BinaryCrossEntropy.loss(&out, &target).unwrap_err().to_string();
        assert!(bce.contains("target") && bce.contains("at sample 1, element 1"), "{bce}");
        assert!(BinaryCrossEntropy.loss_and_grad(&out, &target, &mut grad).is_err());
    }
}

// ---------------------------------------------------------------------------
// The trainer's non-finite checks

network! {
    struct Mlp { input: [4], fc1: dense(8), relu, head: dense(3) }
}

network! {
    /// Two dense layers without activations, for gradients that overflow while outputs do not.
    struct Linear { input: [2], fc1: dense(2), head: dense(2) }
}

fn weights<N: Params<f32>>(net: &N) -> Vec<u32> {
    let mut all = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| all.extend(p.value.iter().map(|v| v.to_bits())));
    all
}

fn set_param<N: Params<f32>>(net: &mut N, name: &str, values: &[f32]) {
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        if p.name.to_string() == name {
            p.value.copy_from_slice(values);
        }
    });
}

/// 12 samples of 4 features, labels 0, 1, 2, 0, …
fn data(nan_at: Option<(usize, usize)>) -> Dataset<f32, 4, Labels> {
    let mut x = Batch::<f32, 4>::from_fn(12, |r, c| ((r * 5 + c * 3) % 7) as f32 / 7.0 - 0.4);
    if let Some((sample, feature)) = nan_at {
        x[(feature, sample)] = f32::NAN;
    }
    Dataset::new(x, (0..12).map(|i| i % 3).collect()).unwrap()
}

fn trainer() -> Trainer<Sgd<f32>> {
    Trainer::new(Sgd::new(0.1)).epochs(2).batch_size(4).shuffle(false).verbose(false)
}

fn non_finite(err: Error) -> (usize, usize, f64, NonFiniteAt) {
    match err {
        Error::NonFinite { epoch, batch, value, at } => (epoch, batch, value, at),
        other => panic!("expected a non-finite error, got {other}"),
    }
}

#[test]
fn a_nan_in_the_input_names_the_training_sample_and_feature() {
    let mut net = Mlp::new(1);
    let before = weights(&net);
    let err = trainer().check_finite(true).fit(&mut net, &SoftmaxCrossEntropy, &data(Some((6, 2))), None);
    let err = err.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the input holds NaN (training sample 6, feature 2) at epoch 1, batch 1: check the data for NaN/Inf"
    );
    let (epoch, batch, value, at) = non_finite(err);
    assert_eq!((epoch, batch, at), (1, 1, NonFiniteAt::Input { sample: 6, feature: 2 }));
    assert!(value.is_nan());
    assert_ne!(weights(&net), before, "batch 0 was a good step");

    // With shuffling the sample is still its index in the dataset.
    let mut net = Mlp::new(1);
    let err = trainer().shuffle(true).check_finite(true).fit(
        &mut net,
        &SoftmaxCrossEntropy,
        &data(Some((9, 0))),
        None,
    );
    let (_, _, _, at) = non_finite(err.unwrap_err());
    assert_eq!(at, NonFiniteAt::Input { sample: 9, feature: 0 });
}

#[test]
fn a_nan_weight_names_the_first_layer_whose_output_is_not_finite() {
    let mut net = Mlp::new(2);
    let mut w = vec![0.1; 32];
    w[0] = f32::NAN;
    set_param(&mut net, "fc1.weight", &w);
    let before = weights(&net);
    let err =
        trainer().check_finite(true).fit(&mut net, &SoftmaxCrossEntropy, &data(None), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the output of layer `fc1` became NaN (training sample 0) at epoch 1, batch 0: lower the learning \
         rate, clip gradients (Trainer::clip_grad_norm) or check the data for NaN/Inf"
    );
    assert_eq!(non_finite(err).3, NonFiniteAt::Layer { name: "fc1".into(), sample: 0 });
    assert_eq!(weights(&net), before, "no step was taken");

    // Without the check, the always-on loss check catches it, without a place.
    let err =
        trainer().check_finite(false).fit(&mut net, &SoftmaxCrossEntropy, &data(None), None).unwrap_err();
    assert_eq!(non_finite(err).3, NonFiniteAt::Loss);
    assert_eq!(weights(&net), before);

    // The default: on in debug builds, off in release builds.
    let err = trainer().fit(&mut net, &SoftmaxCrossEntropy, &data(None), None).unwrap_err();
    let expected = if cfg!(debug_assertions) {
        NonFiniteAt::Layer { name: "fc1".into(), sample: 0 }
    } else {
        NonFiniteAt::Loss
    };
    assert_eq!(non_finite(err).3, expected);
}

/// `Linear` with a tiny first layer and a huge head: outputs and loss stay
/// finite, but the gradient of `fc1.weight` (≈ 2e30 · 1e10 per sample) overflows f32.
fn overflowing_gradients() -> (Linear, Dataset<f32, 2, Labels>) {
    let mut net = Linear::new(0);
    set_param(&mut net, "fc1.weight", &[1e-30; 4]);
    set_param(&mut net, "fc1.bias", &[0.0; 2]);
    set_param(&mut net, "head.weight", &[1e30, 1e30, -1e30, -1e30]);
    set_param(&mut net, "head.bias", &[0.0; 2]);
    let x = Batch::<f32, 2>::from_element(4, 1e10);
    (net, Dataset::new(x, vec![1; 4]).unwrap())
}

#[test]
fn an_overflowing_gradient_names_the_parameter_before_the_step() {
    let (mut net, data) = overflowing_gradients();
    let before = weights(&net);
    let err = Trainer::new(Sgd::new(0.1))
        .batch_size(4)
        .verbose(false)
        .check_finite(true)
        .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the gradient of `fc1.weight` became inf (element 0) at epoch 1, batch 0: lower the learning rate, \
         clip gradients (Trainer::clip_grad_norm) or check the data for NaN/Inf"
    );
    assert_eq!(non_finite(err).3, NonFiniteAt::Gradient { name: "fc1.weight".into(), index: 0 });
    assert_eq!(weights(&net), before, "no step was taken");

    // Without the check the step is taken with infinite gradients, found in the weights and undone…
    let (mut net, data) = overflowing_gradients();
    let err = Trainer::new(Sgd::new(0.1))
        .epochs(1)
        .batch_size(4)
        .verbose(false)
        .check_finite(false)
        .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
        .unwrap_err();
    assert_eq!(non_finite(err).3, NonFiniteAt::Parameter { name: "fc1.weight".into(), index: 0 });
    assert_eq!(weights(&net), before, "the step was undone");
    // …while clipping the values keeps them finite.
    let (mut net, data) = overflowing_gradients();
    Trainer::new(Sgd::new(0.1))
        .epochs(1)
        .batch_size(4)
        .verbose(false)
        .check_finite(false)
        .clip_grad_value(1.0)
        .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
        .unwrap();
    assert!(weights(&net).iter().all(|&w| f32::from_bits(w).is_finite()));
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("staticnet-numerics-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_nan_mid_run_leaves_the_last_checkpoint_untouched() {
    let dir = scratch("checkpoint");
    let path = dir.join("run.ckpt");
    // Epoch 1 on good data writes the checkpoint.
    let mut net = Mlp::new(3);
    trainer().epochs(1).checkpoint(&path).fit(&mut net, &SoftmaxCrossEntropy, &data(None), None).unwrap();
    let saved = std::fs::read(&path).unwrap();
    let after_epoch_1 = weights(&net);

    // Epoch 2 resumes on data with a NaN in its last batch: two good steps, then the error.
    for check in [true, false] {
        let mut resumed = Mlp::new(99);
        let halving = Schedule::Step { every: 1, factor: 0.5 };
        let mut t = trainer().epochs(2).schedule(halving).checkpoint(&path).check_finite(check);
        t.resume(&mut resumed, &path).unwrap();
        assert_eq!(weights(&resumed), after_epoch_1);
        let err = t.fit(&mut resumed, &SoftmaxCrossEntropy, &data(Some((10, 3))), None).unwrap_err();
        let (epoch, batch, _, at) = non_finite(err);
        assert_eq!((epoch, batch), (2, 2));
        let expected = if check { NonFiniteAt::Input { sample: 10, feature: 3 } } else { NonFiniteAt::Loss };
        assert_eq!(at, expected);
        assert_eq!(t.completed_epochs(), 1);
        assert_eq!(t.optimizer().learning_rate(), 0.1, "the base rate, not epoch 2's");
        assert_eq!(std::fs::read(&path).unwrap(), saved, "the checkpoint of epoch 1 is untouched");
        assert!(weights(&resumed).iter().all(|&w| f32::from_bits(w).is_finite()));
    }
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, ["run.ckpt"], "no temporary file left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn all_weights_finite(net: &Mlp) -> bool {
    weights(net).iter().all(|&w| f32::from_bits(w).is_finite())
}

#[test]
fn a_step_that_makes_the_weights_non_finite_is_undone_and_named() {
    // 1e39 is infinite in f32: the first step writes inf and NaN (inf · 0) into every weight.
    for check in [true, false] {
        let mut net = Mlp::new(1);
        let before = weights(&net);
        let mut t = Trainer::new(Sgd::new(1e39)).epochs(1).batch_size(12).verbose(false).check_finite(check);
        let err = t.fit(&mut net, &SoftmaxCrossEntropy, &data(None), None).unwrap_err();
        assert!(err.to_string().contains("the step was undone"), "{err}");
        let (epoch, batch, value, at) = non_finite(err);
        assert_eq!((epoch, batch), (1, 0));
        assert!(!value.is_finite());
        assert_eq!(at, NonFiniteAt::Parameter { name: "fc1.weight".into(), index: 0 });
        assert_eq!(weights(&net), before, "the weights of the last finite step");
    }
}

#[test]
fn a_huge_learning_rate_never_writes_a_non_finite_checkpoint() {
    let dir = scratch("huge-rate");
    let path = dir.join("run.ckpt");
    let mut net = Mlp::new(2);
    let sgd = Sgd::new(1e36);
    let mut t = Trainer::new(sgd).epochs(3).batch_size(4).shuffle(false).verbose(false).checkpoint(&path);
    let err = t.fit(&mut net, &SoftmaxCrossEntropy, &data(None), None).unwrap_err();
    non_finite(err);
    assert!(all_weights_finite(&net));
    if path.exists() {
        let mut saved = Mlp::zeros();
        persist::load_checkpoint(&mut saved, &path).unwrap();
        assert!(all_weights_finite(&saved), "the checkpoint holds finite weights only");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Trains `Mlp` one epoch with `optimizer` twice over, the second run meeting
/// a refused step in between (a fit at a rate of 1e39, infinite in f32): the
/// refused fit leaves the weights and the optimizer's whole state (buffers,
/// moments, step count) as they were, and the next fit continues bit for bit
/// as if it had never happened.
fn a_refused_step_is_as_if_never_tried<O: Optimizer<f32> + Clone>(what: &str, optimizer: O) {
    let fit = |t: &mut Trainer<O>, net: &mut Mlp| t.fit(net, &SoftmaxCrossEntropy, &data(None), None);
    let run = || Trainer::new(optimizer.clone()).epochs(1).batch_size(4).shuffle(false).verbose(false);
    let (mut t, mut net) = (run(), Mlp::new(4));
    let (mut never, mut never_net) = (run(), Mlp::new(4));
    fit(&mut t, &mut net).unwrap();
    fit(&mut never, &mut never_net).unwrap();

    t.optimizer_mut().set_learning_rate(1e39);
    let (state, before) = (t.optimizer().state().unwrap(), weights(&net));
    let (epoch, batch, value, at) = non_finite(fit(&mut t, &mut net).unwrap_err());
    assert_eq!(
        (epoch, batch, at),
        (2, 0, NonFiniteAt::Parameter { name: "fc1.weight".into(), index: 0 }),
        "{what}"
    );
    assert!(!value.is_finite());
    assert_eq!(weights(&net), before, "{what}: the weights");
    assert_eq!(t.optimizer().state().unwrap(), state, "{what}: the optimizer's state");

    t.optimizer_mut().set_learning_rate(0.1);
    fit(&mut t, &mut net).unwrap();
    fit(&mut never, &mut never_net).unwrap();
    assert_eq!(weights(&net), weights(&never_net), "{what}");
    assert_eq!(t.optimizer().state().unwrap(), never.optimizer().state().unwrap(), "{what}");
}

#[test]
fn a_refused_step_leaves_the_optimizer_state_and_training_continues() {
    a_refused_step_is_as_if_never_tried("sgd", Sgd::new(0.1));
    a_refused_step_is_as_if_never_tried("momentum", Sgd::new(0.1).momentum(0.9).weight_decay(1e-3));
    a_refused_step_is_as_if_never_tried("nesterov", Sgd::new(0.1).momentum(0.9).nesterov(true));
    a_refused_step_is_as_if_never_tried("adam", Adam::new(0.1));
    a_refused_step_is_as_if_never_tried("adamw", AdamW::new(0.1, 0.01));
}

#[test]
fn an_optimizer_state_that_would_overflow_refuses_the_step_naming_the_slot() {
    // The gradient of `fc1.weight` is 1e21, finite in f32, but Adam's `exp_avg_sq`,
    // (0.001 · g) · g = 1e39, is not; the weight's update m̂/√v̂ would be 0, finite.
    let mut net = Linear::new(0);
    set_param(&mut net, "fc1.weight", &[1e-30; 4]);
    set_param(&mut net, "fc1.bias", &[0.0; 2]);
    set_param(&mut net, "head.weight", &[1e16, 1e16, -1e16, -1e16]);
    set_param(&mut net, "head.bias", &[0.0; 2]);
    let data = Dataset::new(Batch::<f32, 2>::from_element(4, 1e5), vec![1; 4]).unwrap();
    let before = weights(&net);
    let mut t = Trainer::new(Adam::new(0.01)).epochs(1).batch_size(4).verbose(false).check_finite(true);
    let fresh = t.optimizer().state().unwrap();
    let err = t.fit(&mut net, &SoftmaxCrossEntropy, &data, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the optimizer step would make the `exp_avg_sq` of parameter `fc1.weight` inf (element 0) at epoch 1, \
         batch 0; the step was not taken, the weights and the optimizer's state are those of the last finite \
         step: lower the learning rate, clip gradients (Trainer::clip_grad_norm) or check the data for NaN/Inf"
    );
    let at = NonFiniteAt::OptimizerState { name: "fc1.weight".into(), slot: "exp_avg_sq".into(), index: 0 };
    assert_eq!(non_finite(err).3, at);
    assert_eq!(weights(&net), before);
    assert_eq!(t.optimizer().state().unwrap(), fresh, "no moments and no step count");
    // Clipping the gradients' norm keeps the moments finite.
    Trainer::new(Adam::new(0.01))
        .epochs(1)
        .batch_size(4)
        .verbose(false)
        .clip_grad_norm(1.0)
        .fit(&mut net, &SoftmaxCrossEntropy, &data, None)
        .unwrap();
}

#[test]
fn non_finite_outputs_on_validation_data_are_an_error() {
    // One step at 1e30 leaves finite weights whose outputs overflow on ordinary inputs.
    let mut net = Mlp::new(1);
    let mut t = Trainer::new(Sgd::new(1e30)).epochs(1).batch_size(12).verbose(false);
    let err = t.fit(&mut net, &SoftmaxCrossEntropy, &data(None), Some(&data(None))).unwrap_err();
    let (epoch, batch, value, at) = non_finite(err);
    assert_eq!((epoch, batch, at), (1, 0, NonFiniteAt::Validation));
    assert!(!value.is_finite());
    assert!(all_weights_finite(&net));
}

// ---------------------------------------------------------------------------
// Gradient clipping

/// The gradients of `Mlp` on the first 4 samples, flattened per parameter.
fn gradients(net: &mut Mlp) -> Vec<Vec<f32>> {
    let d = data(None);
    let x = d.features().columns(0, 4).into_owned();
    let labels: Labels = d.targets()[..4].to_vec();
    let mut trace = Default::default();
    let out = net.forward_train(&x, &mut trace).clone();
    let mut d_out = Batch::zeros(0);
    SoftmaxCrossEntropy.loss_and_grad(&out, &labels, &mut d_out).unwrap();
    let mut grads = net.zero_gradients();
    net.backward(&x, &mut trace, &d_out, &mut grads, None);
    let mut all = Vec::new();
    Mlp::visit_grads(&grads, &mut |g| all.push(g.to_vec()));
    all
}

/// One SGD step (lr 1) of the trainer on the first 4 samples: the parameter change.
fn trainer_step(clip: impl FnOnce(Trainer<Sgd<f32>>) -> Trainer<Sgd<f32>>) -> Vec<f32> {
    let mut net = Mlp::new(5);
    let before = weights(&net);
    let d = data(None).take(4);
    clip(Trainer::new(Sgd::new(1.0)).epochs(1).batch_size(4).shuffle(false).verbose(false))
        .fit(&mut net, &SoftmaxCrossEntropy, &d, None)
        .unwrap();
    before.iter().zip(weights(&net)).map(|(&b, a)| f32::from_bits(b) - f32::from_bits(a)).collect()
}

fn flat(g: &[Vec<f32>]) -> Vec<f32> {
    g.iter().flatten().copied().collect()
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-6 + 1e-5 * y.abs(), "[{i}]: {x} vs {y}");
    }
}

#[test]
fn clipping_by_norm_and_value_matches_the_slice_helpers() {
    let raw = gradients(&mut Mlp::new(5));
    let norm = grad_norm(&raw.iter().map(Vec::as_slice).collect::<Vec<_>>());
    assert!(norm > 0.1, "{norm}");

    // No clipping: the step is the gradient.
    assert_close(&trainer_step(|t| t), &flat(&raw));
    // By norm, to a tenth of the norm.
    let mut by_norm = raw.clone();
    let before =
        clip_grad_norm(&mut by_norm.iter_mut().map(Vec::as_mut_slice).collect::<Vec<_>>(), norm / 10.0);
    assert_eq!(before, norm);
    let step = trainer_step(|t| t.clip_grad_norm(norm / 10.0));
    assert_close(&step, &flat(&by_norm));
    let step_norm = step.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    assert!((step_norm - norm / 10.0).abs() < 1e-4 * norm, "{step_norm} vs {}", norm / 10.0);
    // A threshold above the norm changes nothing.
    assert_close(&trainer_step(|t| t.clip_grad_norm(norm * 2.0)), &flat(&raw));
    // By value.
    let max = raw.iter().flatten().fold(0f32, |m, v| m.max(v.abs())) / 4.0;
    let mut by_value = raw.clone();
    clip_grad_value(&mut by_value.iter_mut().map(Vec::as_mut_slice).collect::<Vec<_>>(), max as f64);
    let step = trainer_step(|t| t.clip_grad_value(max as f64));
    assert_close(&step, &flat(&by_value));
    assert!(step.iter().all(|v| v.abs() <= max * (1.0 + 1e-6)));
}

#[test]
fn clipping_thresholds_must_be_positive() {
    let mut net = Mlp::new(6);
    for (t, message) in [
        (trainer().clip_grad_norm(0.0), "invalid setting: clip_grad_norm must be positive, got 0"),
        (trainer().clip_grad_norm(f64::NAN), "invalid setting: clip_grad_norm must be positive, got NaN"),
        (trainer().clip_grad_value(-1.0), "invalid setting: clip_grad_value must be positive, got -1"),
    ] {
        let mut t = t;
        let err = t.fit(&mut net, &SoftmaxCrossEntropy, &data(None), None).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    // Infinity is allowed and clips nothing.
    let step = trainer_step(|t| t.clip_grad_norm(f64::INFINITY));
    assert_close(&step, &flat(&gradients(&mut Mlp::new(5))));
}

#[test]
fn checkpoints_record_the_clipping_settings() {
    let dir = scratch("clip-settings");
    let path = dir.join("run.ckpt");
    let mut net = Mlp::new(7);
    trainer()
        .epochs(1)
        .clip_grad_norm(0.5)
        .checkpoint(&path)
        .fit(&mut net, &SoftmaxCrossEntropy, &data(None), None)
        .unwrap();
    let state = persist::load_checkpoint::<f32, _>(&mut Mlp::new(0), &path).unwrap();
    assert_eq!(state.settings.get("clip_grad_norm").map(String::as_str), Some("0.5"));
    assert_eq!(state.settings.get("clip_grad_value"), None);
    std::fs::remove_dir_all(&dir).unwrap();
}
