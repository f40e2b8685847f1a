//! Tests of the optimizers: updates by hand, state export and restore, and refused steps.

use super::*;

/// One parameter vector `w`, updated `steps` times with gradient `grad(w)`.
fn run<O: Optimizer<f64>>(opt: &mut O, w: &mut [f64], steps: usize, grad: impl Fn(&[f64]) -> Vec<f64>) {
    for _ in 0..steps {
        let g = grad(w);
        opt.begin_step();
        opt.update(0, ParamMut { name: ParamPath::ROOT.join("w"), shape: &[w.len()], value: w }, &g).unwrap();
    }
}

#[test]
fn large_tensors_update_the_same_on_any_thread_count() {
    // Above PAR_MIN_ELEMENTS the update is split between threads; every
    // element's arithmetic is unchanged, so the results are bit-for-bit equal.
    let _threads = crate::tensor::threads::thread_count_lock();
    let n = 3 * PAR_MIN_ELEMENTS + 7;
    let grad = |w: &[f64]| w.iter().enumerate().map(|(i, x)| x * 0.3 + (i as f64 * 0.01).sin()).collect();
    let start: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).cos()).collect();
    let mut results = Vec::new();
    for threads in [1, 2] {
        crate::tensor::set_threads(threads);
        let (mut a, mut b, mut c) = (start.clone(), start.clone(), start.clone());
        run(&mut Sgd::new(0.1), &mut a, 3, grad);
        run(&mut Sgd::new(0.1).momentum(0.9).nesterov(true), &mut b, 3, grad);
        run(&mut Adam::new(0.01), &mut c, 3, grad);
        results.push((a, b, c));
    }
    crate::tensor::set_threads(1);
    assert!(results[0] == results[1]);
    assert!(results[0].0 != start && results[0].2 != start);
}

#[test]
fn sgd_plain_step() {
    let mut w = [1.0, -2.0];
    run(&mut Sgd::new(0.1), &mut w, 1, |_| vec![0.5, -1.0]);
    assert_eq!(w, [0.95, -1.9]);
}

#[test]
fn sgd_momentum_by_hand() {
    // g = 1 each step: v1 = 1, v2 = 1.9, v3 = 2.71; w = 0 - 0.1·(1 + 1.9 + 2.71)
    let mut w = [0.0];
    run(&mut Sgd::new(0.1).momentum(0.9), &mut w, 3, |_| vec![1.0]);
    assert!((w[0] - -0.561).abs() < 1e-12, "{}", w[0]);
}

#[test]
fn sgd_nesterov_by_hand() {
    // g = 1: v1 = 1, step1 = 1 + 0.9 = 1.9; v2 = 1.9, step2 = 1 + 1.71 = 2.71
    let mut w = [0.0];
    run(&mut Sgd::new(0.1).momentum(0.9).nesterov(true), &mut w, 2, |_| vec![1.0]);
    assert!((w[0] - -0.461).abs() < 1e-12, "{}", w[0]);
}

#[test]
fn sgd_weight_decay_adds_l2_gradient() {
    // g' = 0 + 0.5·2 = 1; w = 2 - 0.1 = 1.9
    let mut w = [2.0];
    run(&mut Sgd::new(0.1).weight_decay(0.5), &mut w, 1, |_| vec![0.0]);
    assert!((w[0] - 1.9).abs() < 1e-15);
}

#[test]
fn adam_first_step_moves_by_the_learning_rate() {
    // Bias correction makes the first step lr·g/|g| whatever the gradient's scale.
    let mut w = [1.0, 1.0];
    run(&mut Adam::new(0.01), &mut w, 1, |_| vec![1e-3, -50.0]);
    assert!((w[0] - 0.99).abs() < 1e-7 && (w[1] - 1.01).abs() < 1e-9, "{w:?}");
}

#[test]
fn adam_two_steps_by_hand() {
    // g1 = 1, g2 = 3. m1 = 0.1, v1 = 0.001; m2 = 0.39, v2 = 0.009999.
    // m̂2 = 0.39/0.19, v̂2 = 0.009999/0.001999; step2 = 0.1·m̂2/(√v̂2 + 1e-8)
    let mut w = [0.0];
    let mut opt = Adam::new(0.1);
    for g in [[1.0], [3.0]] {
        opt.begin_step();
        opt.update(0, ParamMut { name: ParamPath::ROOT, shape: &[1], value: &mut w }, &g).unwrap();
    }
    let step1 = 0.1 * 1.0 / (1.0 + 1e-8);
    let step2 = 0.1 * (0.39 / 0.19) / ((0.009999f64 / 0.001999).sqrt() + 1e-8);
    assert!((w[0] - -(step1 + step2)).abs() < 1e-12, "{} vs {}", w[0], -(step1 + step2));
}

#[test]
fn adamw_decays_weights_apart_from_the_gradient() {
    // Zero gradient: Adam's update is 0/(0+eps) = 0, so only the decay acts.
    let mut w = [2.0];
    run(&mut AdamW::new(0.1, 0.5), &mut w, 1, |_| vec![0.0]);
    assert!((w[0] - 2.0 * (1.0 - 0.05)).abs() < 1e-15);
    // Adam's L2 decay instead goes through the moments: first step moves by lr.
    let mut w = [2.0];
    run(&mut Adam::new(0.1).weight_decay(0.5), &mut w, 1, |_| vec![0.0]);
    assert!((w[0] - 1.9).abs() < 1e-7);
}

#[test]
fn optimizers_minimise_a_quadratic() {
    let grad = |w: &[f64]| w.iter().map(|x| 2.0 * (x - 3.0)).collect::<Vec<_>>();
    let mut w = [0.0, 10.0];
    run(&mut Sgd::new(0.05).momentum(0.9).nesterov(true), &mut w, 200, grad);
    assert!(w.iter().all(|x| (x - 3.0).abs() < 1e-6), "{w:?}");
    let mut w = [0.0, 10.0];
    run(&mut Adam::new(0.1), &mut w, 1000, grad);
    assert!(w.iter().all(|x| (x - 3.0).abs() < 1e-3), "{w:?}");
}

#[test]
fn bad_settings_are_errors_not_panics() {
    let mut w = [0.0];
    let mut opt = Sgd::new(f64::NAN);
    let r = opt.update(0, ParamMut { name: ParamPath::ROOT, shape: &[1], value: &mut w }, &[1.0]);
    assert!(matches!(r, Err(Error::InvalidConfig(_))));
    let mut opt = Adam::<f64>::new(0.1).betas(1.0, 0.999);
    let r = opt.update(0, ParamMut { name: ParamPath::ROOT, shape: &[1], value: &mut w }, &[1.0]);
    assert!(matches!(r, Err(Error::InvalidConfig(_))));
}

#[test]
fn state_that_does_not_fit_is_an_error() {
    let mut opt = Sgd::new(0.1).momentum(0.9);
    let mut w = [0.0, 0.0];
    opt.update(0, ParamMut { name: ParamPath::ROOT, shape: &[2], value: &mut w }, &[1.0, 1.0]).unwrap();
    let mut w3 = [0.0; 3];
    let r = opt.update(0, ParamMut { name: ParamPath::ROOT, shape: &[3], value: &mut w3 }, &[1.0; 3]);
    assert!(r.is_err());
}
/// Runs `first` for 3 steps, moves its state into `second` (built with other
/// settings), then runs both 3 more steps: they must agree bit for bit.
fn state_carries_over<O: Optimizer<f64>>(mut first: O, mut second: O) {
    let grad = |w: &[f64]| w.iter().map(|x| 2.0 * (x - 3.0) + 0.1).collect::<Vec<_>>();
    let mut w = [0.5, -1.0, 2.0];
    run(&mut first, &mut w, 3, grad);
    let state = first.state().unwrap();
    second.load_state(state.clone()).unwrap();
    assert_eq!(second.state().unwrap(), state);
    let mut w2 = w;
    run(&mut first, &mut w, 3, grad);
    run(&mut second, &mut w2, 3, grad);
    assert_eq!(w.map(f64::to_bits), w2.map(f64::to_bits));
}

#[test]
fn every_optimizer_exports_and_restores_its_whole_state() {
    state_carries_over(Sgd::new(0.05).momentum(0.9).nesterov(true).weight_decay(0.01), Sgd::new(1.0));
    state_carries_over(Adam::new(0.01).betas(0.8, 0.99).eps(1e-6).weight_decay(0.1), Adam::new(1.0));
    state_carries_over(AdamW::new(0.01, 0.05), AdamW::new(1.0, 0.0));
    state_carries_over(RmsProp::new(0.01).momentum(0.9).centered(true).weight_decay(0.1), RmsProp::new(1.0));
    state_carries_over(Adagrad::new(0.1).lr_decay(0.1).initial_accumulator_value(0.5), Adagrad::new(1.0));
    state_carries_over(Adadelta::new(0.5).rho(0.8).weight_decay(0.1), Adadelta::new(1.0));
    let adam = Adam::<f64>::new(0.01).state().unwrap();
    assert_eq!(adam.kind, "adam");
    assert_eq!(adam.slots.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["exp_avg", "exp_avg_sq"]);
    assert_eq!(adam.hyper["beta2"], 0.999);
}

#[test]
fn state_of_another_optimizer_is_refused_and_changes_nothing() {
    let mut sgd = Sgd::<f64>::new(0.1).momentum(0.5);
    let before = sgd.state().unwrap();
    let err = sgd.load_state(Adam::<f64>::new(0.01).state().unwrap()).unwrap_err();
    assert!(err.to_string().contains("cannot restore adam optimizer state into sgd"), "{err}");
    let mut missing = before.clone();
    missing.hyper.remove("momentum");
    assert!(sgd.load_state(missing).unwrap_err().to_string().contains("`momentum`"));
    let mut extra = before.clone();
    extra.slots.push(("exp_avg".into(), vec![]));
    assert!(sgd.load_state(extra).is_err());
    assert_eq!(sgd.state().unwrap(), before);
    let mut uneven = Adam::<f64>::new(0.1).state().unwrap();
    uneven.slots[0].1.push(vec![0.0]);
    assert!(Adam::<f64>::new(0.1).load_state(uneven).is_err());
}

/// Two parameters, `a` (3 values) and `b` (large enough to be updated on two threads).
#[derive(Clone)]
struct Two {
    a: Vec<f64>,
    b: Vec<f64>,
}

const B: usize = 2 * PAR_MIN_ELEMENTS + 5;

impl Two {
    fn new() -> Self {
        Two { a: vec![0.5, -1.0, 2.0], b: (0..B).map(|i| (i as f64 * 0.37).cos()).collect() }
    }

    /// The gradient of `Σ (w − 3)²`-like terms, different per element.
    fn grads(&self) -> (Vec<f64>, Vec<f64>) {
        let g =
            |w: &[f64]| w.iter().enumerate().map(|(i, x)| 2.0 * (x - 3.0) + (i % 7) as f64 * 0.1).collect();
        (g(&self.a), g(&self.b))
    }

    fn bits(&self) -> Vec<u64> {
        self.a.iter().chain(&self.b).map(|v| v.to_bits()).collect()
    }
}

impl Params<f64> for Two {
    type Gradients = (Vec<f64>, Vec<f64>);
    const PARAM_COUNT: usize = 3 + B;

    fn zero_gradients(&self) -> Self::Gradients {
        (vec![0.0; 3], vec![0.0; B])
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(crate::params::Param<'_, f64>)) {
        f(crate::params::Param { name: path.join("a"), shape: &[3], value: &self.a });
        f(crate::params::Param { name: path.join("b"), shape: &[B], value: &self.b });
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, f64>)) {
        f(ParamMut { name: path.join("a"), shape: &[3], value: &mut self.a });
        f(ParamMut { name: path.join("b"), shape: &[B], value: &mut self.b });
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, f64>, &[f64]),
    ) {
        f(ParamMut { name: path.join("a"), shape: &[3], value: &mut self.a }, &grads.0);
        f(ParamMut { name: path.join("b"), shape: &[B], value: &mut self.b }, &grads.1);
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[f64])) {
        f(&grads.0);
        f(&grads.1);
    }
}

/// An optimizer that only implements the required methods (plain SGD through
/// [`Sgd::update`]), so it takes the trait's copy-and-restore `step_if_finite`.
struct ByHand(Sgd<f64>);

impl Optimizer<f64> for ByHand {
    fn learning_rate(&self) -> f64 {
        self.0.learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.0.set_learning_rate(lr)
    }
    fn begin_step(&mut self) {}
    fn update(&mut self, index: usize, p: ParamMut<'_, f64>, grad: &[f64]) -> Result<()> {
        self.0.update(index, p, grad)
    }
}

/// The optimizer's whole state and `net`'s bits.
fn snapshot<O: Optimizer<f64>>(opt: &O, net: &Two) -> (OptimizerState<f64>, Vec<u64>) {
    (opt.state().unwrap(), net.bits())
}

/// `opt` after two steps: the two-pass step writes exactly what `step` writes; a
/// step refused for a NaN gradient late in `b` changes neither the weights
/// (not even `a`, visited first) nor the state (buffers, moments, step count);
/// and the next step gives the bits of a run that never met the refused one.
fn a_refused_step_changes_nothing<O: Optimizer<f64> + Clone>(what: &str, mut opt: O) {
    let (mut net, mut undo) = (Two::new(), Vec::new());
    let mut by_step = (opt.clone(), net.clone());
    for _ in 0..2 {
        let g = net.grads();
        assert_eq!(opt.step_if_finite(&mut net, &g, &mut undo).unwrap(), None, "{what}");
        by_step.0.step(&mut by_step.1, &g).unwrap();
    }
    assert_eq!(snapshot(&opt, &net), snapshot(&by_step.0, &by_step.1), "{what}: two passes = one");
    assert!(undo.is_empty(), "{what}: the built-in optimizers copy nothing");
    let before = snapshot(&opt, &net);
    let (untouched, untouched_net) = (opt.clone(), net.clone());

    // On two threads `b` is checked in two halves, each finding one: the first is named.
    let mut bad = net.grads();
    (bad.1[40], bad.1[B - 9]) = (f64::NAN, f64::NAN);
    let refused = opt.step_if_finite(&mut net, &bad, &mut undo).unwrap().expect(what);
    assert_eq!((refused.name.as_str(), refused.index, refused.slot.as_deref()), ("b", 40, None), "{what}");
    assert!(refused.value.is_nan(), "{what}");
    assert_eq!(snapshot(&opt, &net), before, "{what}: weights and state unchanged");

    let g = net.grads();
    opt.step_if_finite(&mut net, &g, &mut undo).unwrap();
    let (mut never, mut never_net) = (untouched, untouched_net);
    never.step_if_finite(&mut never_net, &g, &mut undo).unwrap();
    assert_eq!(snapshot(&opt, &net), snapshot(&never, &never_net), "{what}: as if never refused");
}

#[test]
fn a_refused_step_leaves_weights_and_optimizer_state_unchanged() {
    let _threads = crate::tensor::threads::thread_count_lock();
    for threads in [1, 2] {
        crate::tensor::set_threads(threads);
        a_refused_step_changes_nothing("sgd", Sgd::new(0.05));
        a_refused_step_changes_nothing("sgd + decay", Sgd::new(0.05).weight_decay(0.01));
        a_refused_step_changes_nothing("momentum", Sgd::new(0.05).momentum(0.9).weight_decay(0.01));
        a_refused_step_changes_nothing("nesterov", Sgd::new(0.05).momentum(0.9).nesterov(true));
        a_refused_step_changes_nothing("adam", Adam::new(0.01).weight_decay(0.1));
        a_refused_step_changes_nothing("adamw", AdamW::new(0.01, 0.05).betas(0.8, 0.99));
        a_refused_step_changes_nothing("rmsprop", RmsProp::new(0.01).momentum(0.9).centered(true));
        a_refused_step_changes_nothing("adagrad", Adagrad::new(0.1).initial_accumulator_value(0.1));
        a_refused_step_changes_nothing("adadelta", Adadelta::new(1.0).weight_decay(0.01));
    }
    crate::tensor::set_threads(1);
}

#[test]
fn a_state_value_that_would_overflow_refuses_the_step_naming_the_slot() {
    // g = 1e200: exp_avg_sq = (0.001·g)·g overflows while the weight's update, m̂/√v̂, is 0.
    for first_step in [true, false] {
        let (mut net, mut undo) = (Two::new(), Vec::new());
        let mut opt = Adam::new(0.01);
        if !first_step {
            let g = net.grads();
            opt.step_if_finite(&mut net, &g, &mut undo).unwrap();
        }
        let before = snapshot(&opt, &net);
        let mut g = net.grads();
        g.0[2] = 1e200;
        let refused = opt.step_if_finite(&mut net, &g, &mut undo).unwrap().unwrap();
        assert_eq!(
            refused,
            NonFiniteUpdate {
                name: "a".into(),
                index: 2,
                value: f64::INFINITY,
                slot: Some("exp_avg_sq".into())
            }
        );
        assert_eq!(snapshot(&opt, &net), before);
        // `step` itself checks nothing: it writes the infinity.
        opt.step(&mut net, &g).unwrap();
        assert_eq!(opt.state().unwrap().slots[1].1[0][2], f64::INFINITY);
        assert!(net.a[2].is_finite());
    }
    // Before the first step a refused one leaves no state behind and no step counted.
    let (mut net, mut undo) = (Two::new(), Vec::new());
    let mut opt = Sgd::new(0.1).momentum(0.9);
    let mut g = net.grads();
    g.0[0] = f64::INFINITY;
    let refused = opt.step_if_finite(&mut net, &g, &mut undo).unwrap().unwrap();
    assert_eq!((refused.name.as_str(), refused.index, refused.value), ("a", 0, f64::NEG_INFINITY));
    assert_eq!(opt.state().unwrap(), Sgd::new(0.1).momentum(0.9).state().unwrap());
}

#[test]
fn other_optimizers_undo_a_step_by_copying_the_weights() {
    let (mut net, mut undo) = (Two::new(), Vec::new());
    let mut opt = ByHand(Sgd::new(0.05));
    let mut sgd = (Sgd::new(0.05), net.clone());
    let g = net.grads();
    assert_eq!(opt.step_if_finite(&mut net, &g, &mut undo).unwrap(), None);
    sgd.0.step_if_finite(&mut sgd.1, &g, &mut Vec::new()).unwrap();
    assert_eq!(net.bits(), sgd.1.bits());
    assert_eq!(undo.len(), 3 + B, "the default copies every weight");
    let before = net.bits();
    let mut bad = net.grads();
    bad.1[7] = f64::NAN;
    let refused = opt.step_if_finite(&mut net, &bad, &mut undo).unwrap().unwrap();
    let by_two_passes = sgd.0.step_if_finite(&mut sgd.1, &bad, &mut Vec::new()).unwrap().unwrap();
    assert_eq!((refused.name.as_str(), refused.index, refused.slot), ("b", 7, None));
    assert_eq!((by_two_passes.name, by_two_passes.index), (refused.name, refused.index));
    assert_eq!(net.bits(), before, "restored");
    // A failing step is undone too: a NaN rate is refused before anything is written.
    opt.set_learning_rate(f64::NAN);
    assert!(opt.step_if_finite(&mut net, &g, &mut undo).is_err());
    assert_eq!(net.bits(), before);
    let mut sgd = Sgd::new(f64::NAN);
    assert!(sgd.step_if_finite(&mut net, &g, &mut undo).is_err());
    assert_eq!(net.bits(), before);
}

#[test]
fn state_that_does_not_fit_refuses_the_step_before_writing() {
    let (mut net, mut undo) = (Two::new(), Vec::new());
    let mut opt = Adam::new(0.01);
    let mut state = opt.state().unwrap();
    state.slots = vec![
        ("exp_avg".into(), vec![vec![0.0; 3], vec![0.0; 4]]),
        ("exp_avg_sq".into(), vec![vec![0.0; 3], vec![0.0; 4]]),
    ];
    opt.load_state(state.clone()).unwrap();
    let before = net.bits();
    let g = net.grads();
    let err = opt.step_if_finite(&mut net, &g, &mut undo).unwrap_err();
    assert!(err.to_string().contains("does not fit parameter b"), "{err}");
    assert_eq!(net.bits(), before, "not even `a` was written");
    assert_eq!(opt.state().unwrap(), state);
}

#[test]
fn weights_the_quick_test_is_unsure_of_are_checked_exactly() {
    // |w| above a quarter of f64::MAX: Adam's quick test is not sure, the exact one passes,
    // and the check goes on to the later blocks rather than stopping there.
    for bad_at in [None, Some(B - 9)] {
        let (mut net, mut undo) = (Two::new(), Vec::new());
        (net.a[1], net.b[0]) = (1e308, -1e308);
        let mut opt = Adam::new(0.01);
        let mut g = net.grads();
        (g.0[1], g.1[0]) = (1.0, -1.0);
        if let Some(i) = bad_at {
            g.1[i] = f64::NAN;
        }
        let before = net.bits();
        let refused = opt.step_if_finite(&mut net, &g, &mut undo).unwrap();
        assert_eq!(refused.map(|r| (r.name, r.index)), bad_at.map(|i| ("b".to_string(), i)));
        if bad_at.is_some() {
            assert_eq!(net.bits(), before);
        } else {
            assert!(net.a.iter().chain(&net.b).all(|w| w.is_finite()));
            assert_eq!(net.b[0], -1e308, "a step of 0.01 is below its rounding");
            assert_ne!(net.bits(), before, "the step was taken");
        }
    }
}

#[test]
fn new_optimizers_refuse_bad_settings_and_state_missing_a_slot() {
    let mut w = [0.0];
    fn p(w: &mut [f64; 1]) -> ParamMut<'_, f64> {
        ParamMut { name: ParamPath::ROOT, shape: &[1], value: &mut w[..] }
    }
    let err = RmsProp::<f64>::new(0.1).alpha(1.5).update(0, p(&mut w), &[1.0]).unwrap_err();
    assert_eq!(err.to_string(), "invalid setting: alpha must be in [0, 1], got 1.5");
    assert!(Adadelta::<f64>::new(0.1).rho(-0.1).update(0, p(&mut w), &[1.0]).is_err());
    assert!(Adagrad::<f64>::new(0.1).lr_decay(-1.0).update(0, p(&mut w), &[1.0]).is_err());
    let mut opt = Adagrad::new(0.1);
    run(&mut opt, &mut [1.0, 2.0], 2, |w| w.to_vec());
    let mut state = opt.state().unwrap();
    state.slots.clear();
    let err = Adagrad::<f64>::new(0.1).load_state(state).unwrap_err();
    assert_eq!(err.to_string(), "invalid setting: adagrad optimizer state at step 2 lacks its `sum` slot");
    let mut negative = opt.state().unwrap();
    negative.slots[0].1[0][1] = -1.0;
    assert!(Adagrad::<f64>::new(0.1).load_state(negative).unwrap_err().to_string().contains("non-negative"));
}
