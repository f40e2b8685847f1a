//! Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW.
//!
//! Update rules follow PyTorch's `torch.optim` exactly, so hyper-parameters
//! carry over. State (momentum buffers, moments) is kept per parameter in the
//! network's visiting order and allocated on the first step only.
//!
//! [`Optimizer::state`] and [`Optimizer::load_state`] export and restore all of
//! it ([`OptimizerState`]), so a checkpoint resumes training bit for bit
//! (see [`crate::persist`] and [`crate::train::Trainer::resume`]).

use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::{ParamMut, ParamPath, Params};
use crate::tensor::threads::{for_ranges, SharedSlice};
use std::collections::BTreeMap;

/// Parameter tensors below this many scalars are updated on one thread.
const PAR_MIN_ELEMENTS: usize = 1 << 15;

/// Everything an optimizer carries from step to step, for checkpoints.
///
/// Slots use PyTorch's names: `momentum_buffer` ([`Sgd`]), `exp_avg` and
/// `exp_avg_sq` ([`Adam`], [`AdamW`]). Each slot holds one vector per
/// parameter in the network's visiting order, or none before the first step
/// (and for SGD without momentum).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T> {
    /// Which optimizer: `"sgd"`, `"adam"` or `"adamw"`.
    pub kind: String,
    /// Hyper-parameters by name (`lr`, `momentum`, `nesterov` as 0/1,
    /// `weight_decay`, `beta1`, `beta2`, `eps`).
    pub hyper: BTreeMap<String, f64>,
    /// Steps taken, for Adam's bias correction (0 for SGD, which needs none).
    pub step: u64,
    /// The per-parameter state vectors by slot name, slots sorted by name.
    pub slots: Vec<(String, Vec<Vec<T>>)>,
}

/// The largest step count a state may hold (2^53, exact in f64), as in checkpoints.
const MAX_STEP: u64 = 1 << 53;

impl<T: Float> OptimizerState<T> {
    /// Why this state must not be resumed from, naming the field by its checkpoint key
    /// (`optimizer.eps`, `optimizer.step`…), or `None`. Hyper-parameters must be finite
    /// and in range (`nesterov` 0 or 1, betas in [0, 1)), state vectors finite and
    /// `exp_avg_sq` non-negative: one bad value would turn every weight into NaN on
    /// the next step. `tensor(slot, k)` names (quoted) the `k`-th parameter's vector of `slot`.
    pub(crate) fn problem(&self, tensor: &dyn Fn(&str, usize) -> String) -> Option<String> {
        let adam = matches!(self.kind.as_str(), "adam" | "adamw");
        for (key, &v) in &self.hyper {
            let (ok, rule) = match key.as_str() {
                "nesterov" => (v == 0.0 || v == 1.0, "0 (false) or 1 (true)"),
                "beta1" | "beta2" if adam => ((0.0..1.0).contains(&v), "in [0, 1)"),
                "lr" | "momentum" | "weight_decay" | "eps" => {
                    (v.is_finite() && v >= 0.0, "finite and non-negative")
                }
                _ => (v.is_finite(), "finite"),
            };
            if !ok {
                return Some(format!("`optimizer.{key}` = {v:?} must be {rule}"));
            }
        }
        if self.step > MAX_STEP {
            return Some(format!("`optimizer.step` = {} is out of range: at most 2^53", self.step));
        }
        for (slot, vectors) in &self.slots {
            for (k, values) in vectors.iter().enumerate() {
                let bad = |v: &T| !v.is_finite() || (slot == "exp_avg_sq" && *v < T::zero());
                if let Some(i) = values.iter().position(bad) {
                    let rule = if slot == "exp_avg_sq" { "finite and non-negative" } else { "finite" };
                    return Some(format!(
                        "{} holds {:?} at element {i}: optimizer state must be {rule}",
                        tensor(slot, k),
                        values[i].as_f64()
                    ));
                }
            }
        }
        None
    }

    /// Refuses a state [`OptimizerState::problem`] finds fault with.
    fn check_values(&self) -> Result<()> {
        match self.problem(&|slot, k| format!("`optimizer.{slot}` of parameter {k}")) {
            None => Ok(()),
            Some(reason) => Err(Error::InvalidConfig(format!("{} optimizer state: {reason}", self.kind))),
        }
    }
}

impl<T> OptimizerState<T> {
    /// The hyper-parameter `key`, or an error naming it.
    fn hyper(&self, key: &str) -> Result<f64> {
        self.hyper.get(key).copied().ok_or_else(|| {
            Error::InvalidConfig(format!("{} optimizer state has no `{key}` setting", self.kind))
        })
    }

    /// Refuses the state of another kind of optimizer.
    fn check_kind(&self, kind: &str) -> Result<()> {
        if self.kind == kind {
            return Ok(());
        }
        Err(Error::InvalidConfig(format!(
            "cannot restore {} optimizer state into {kind}: resume with the optimizer the checkpoint was made with",
            self.kind
        )))
    }

    /// Checks the kind and that the slots are exactly `names`, all with the same number of
    /// parameters; returns their vectors in the order of `names`.
    fn take_slots(self, kind: &str, names: &[&str]) -> Result<Vec<Vec<Vec<T>>>> {
        self.check_kind(kind)?;
        let mut slots: BTreeMap<String, Vec<Vec<T>>> = BTreeMap::new();
        for (name, vectors) in self.slots {
            if !names.contains(&name.as_str()) || slots.insert(name.clone(), vectors).is_some() {
                return Err(Error::InvalidConfig(format!(
                    "{kind} optimizer state has an unexpected slot `{name}`"
                )));
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(slots.remove(*name).unwrap_or_default());
        }
        if out.windows(2).any(|w| w[0].len() != w[1].len()) {
            return Err(Error::InvalidConfig(format!(
                "{kind} optimizer state: slots cover different parameters"
            )));
        }
        Ok(out)
    }
}

/// Updates a network's parameters from its gradients.
pub trait Optimizer<T: Float> {
    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Changes the learning rate, e.g. from a schedule between epochs.
    fn set_learning_rate(&mut self, lr: f64);

    /// Called once per step before the parameters are visited.
    fn begin_step(&mut self);

    /// Updates the `index`-th parameter (in visiting order) from its gradient.
    fn update(&mut self, index: usize, param: ParamMut<'_, T>, grad: &[T]) -> Result<()>;

    /// Exports the complete state (settings, step count, per-parameter
    /// vectors) for a checkpoint. The default refuses: an optimizer must
    /// implement this to be checkpointed.
    fn state(&self) -> Result<OptimizerState<T>> {
        Err(Error::InvalidConfig("this optimizer cannot export its state for a checkpoint".into()))
    }

    /// Replaces the complete state with `state` (as exported by [`Optimizer::state`]
    /// of the same kind of optimizer). On error the optimizer is unchanged.
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        let _ = state;
        Err(Error::InvalidConfig("this optimizer cannot restore its state from a checkpoint".into()))
    }

    /// One optimisation step over every parameter of `net`.
    fn step<N: Params<T>>(&mut self, net: &mut N, grads: &N::Gradients) -> Result<()>
    where
        Self: Sized,
    {
        self.begin_step();
        let mut index = 0;
        let mut result = Ok(());
        net.visit_params_with_grads(grads, &ParamPath::ROOT, &mut |p, g| {
            if result.is_ok() {
                result = self.update(index, p, g);
            }
            index += 1;
        });
        result
    }
}

/// Per-parameter state vectors, created zeroed on first use.
#[derive(Clone, Debug, Default)]
struct Slots<T>(Vec<Vec<T>>);

impl<T: Float> Slots<T> {
    /// The state of parameter `index` with `len` scalars.
    fn get(&mut self, index: usize, len: usize, name: &ParamPath<'_>) -> Result<&mut [T]> {
        if index == self.0.len() {
            self.0.push(vec![T::zero(); len]);
        }
        match self.0.get_mut(index) {
            Some(slot) if slot.len() == len => Ok(slot),
            _ => Err(Error::InvalidConfig(format!(
                "optimizer state does not fit parameter {name} ({len} values): \
                 an optimizer must stay with the network it started on"
            ))),
        }
    }
}

/// Checked on every update (a schedule may change a rate between steps), so
/// the check is inlined and the error, which ends training, built out of line.
#[inline]
fn check_rate(what: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(bad_rate(what, value))
    }
}

#[cold]
fn bad_rate(what: &str, value: f64) -> Error {
    Error::InvalidConfig(format!("{what} must be finite and non-negative, got {value}"))
}

/// Stochastic gradient descent, with optional momentum, Nesterov momentum and
/// (L2) weight decay, as in `torch.optim.SGD` (no dampening).
#[derive(Clone, Debug)]
pub struct Sgd<T> {
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    velocity: Slots<T>,
}

impl<T: Float> Sgd<T> {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Sgd { lr, momentum: 0.0, nesterov: false, weight_decay: 0.0, velocity: Slots(Vec::new()) }
    }

    /// Adds heavy-ball momentum (typically 0.9).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Uses Nesterov momentum instead of heavy-ball.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Adds `weight_decay · w` to each gradient (L2 regularisation).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn begin_step(&mut self) {}

    fn state(&self) -> Result<OptimizerState<T>> {
        let hyper = [
            ("lr", self.lr),
            ("momentum", self.momentum),
            ("nesterov", if self.nesterov { 1.0 } else { 0.0 }),
            ("weight_decay", self.weight_decay),
        ];
        Ok(OptimizerState {
            kind: "sgd".into(),
            hyper: hyper.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            step: 0,
            slots: vec![("momentum_buffer".into(), self.velocity.0.clone())],
        })
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        state.check_kind("sgd")?;
        state.check_values()?;
        let (lr, momentum) = (state.hyper("lr")?, state.hyper("momentum")?);
        let (nesterov, weight_decay) = (state.hyper("nesterov")?, state.hyper("weight_decay")?);
        let mut slots = state.take_slots("sgd", &["momentum_buffer"])?;
        *self =
            Sgd { lr, momentum, nesterov: nesterov != 0.0, weight_decay, velocity: Slots(slots.remove(0)) };
        Ok(())
    }

    fn update(&mut self, index: usize, p: ParamMut<'_, T>, grad: &[T]) -> Result<()> {
        check_rate("learning rate", self.lr)?;
        check_rate("momentum", self.momentum)?;
        check_rate("weight decay", self.weight_decay)?;
        let (lr, mu, wd) = (T::cast(self.lr), T::cast(self.momentum), T::cast(self.weight_decay));
        let n = p.value.len().min(grad.len());
        let w = SharedSlice::new(&mut p.value[..n]);
        if self.momentum == 0.0 {
            for_ranges(n, PAR_MIN_ELEMENTS, &|r| {
                // SAFETY: `for_ranges` hands out disjoint ranges of `0..n`.
                let w = unsafe { w.range(r.clone()) };
                for (w, &g) in w.iter_mut().zip(&grad[r]) {
                    *w -= lr * (g + wd * *w);
                }
            });
            return Ok(());
        }
        let velocity = self.velocity.get(index, n, &p.name)?;
        let v = SharedSlice::new(&mut velocity[..n]);
        let nesterov = self.nesterov;
        for_ranges(n, PAR_MIN_ELEMENTS, &|r| {
            // SAFETY: `for_ranges` hands out disjoint ranges of `0..n`.
            let (w, v) = unsafe { (w.range(r.clone()), v.range(r.clone())) };
            for ((w, &g), v) in w.iter_mut().zip(&grad[r]).zip(v.iter_mut()) {
                let g = g + wd * *w;
                // PyTorch starts the buffer at the first gradient; from zero, `mu·0 + g` is the same.
                *v = mu * *v + g;
                let step = if nesterov { g + mu * *v } else { *v };
                *w -= lr * step;
            }
        });
        Ok(())
    }
}

/// Adam's moments and step count, shared by [`Adam`] and [`AdamW`].
#[derive(Clone, Debug)]
struct Moments<T> {
    beta1: f64,
    beta2: f64,
    eps: f64,
    step: u64,
    first: Slots<T>,
    second: Slots<T>,
}

impl<T: Float> Moments<T> {
    /// The moments' part of an [`OptimizerState`], with `lr` and `weight_decay` beside it.
    fn state(&self, kind: &str, lr: f64, weight_decay: f64) -> OptimizerState<T> {
        let hyper = [
            ("lr", lr),
            ("weight_decay", weight_decay),
            ("beta1", self.beta1),
            ("beta2", self.beta2),
            ("eps", self.eps),
        ];
        OptimizerState {
            kind: kind.into(),
            hyper: hyper.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            step: self.step,
            slots: vec![
                ("exp_avg".into(), self.first.0.clone()),
                ("exp_avg_sq".into(), self.second.0.clone()),
            ],
        }
    }

    /// Moments from an [`OptimizerState`] of `kind`, with its `lr` and `weight_decay`.
    fn from_state(state: OptimizerState<T>, kind: &str) -> Result<(Self, f64, f64)> {
        state.check_kind(kind)?;
        state.check_values()?;
        let (lr, weight_decay) = (state.hyper("lr")?, state.hyper("weight_decay")?);
        let (beta1, beta2, eps) = (state.hyper("beta1")?, state.hyper("beta2")?, state.hyper("eps")?);
        let step = state.step;
        let mut slots = state.take_slots(kind, &["exp_avg", "exp_avg_sq"])?;
        let second = Slots(slots.pop().unwrap_or_default());
        let first = Slots(slots.pop().unwrap_or_default());
        Ok((Moments { beta1, beta2, eps, step, first, second }, lr, weight_decay))
    }

    fn new() -> Self {
        Moments {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            first: Slots(Vec::new()),
            second: Slots(Vec::new()),
        }
    }

    /// `w -= lr · m̂ / (√v̂ + eps)` with `g` already including any L2 term.
    fn apply(&mut self, index: usize, p: ParamMut<'_, T>, grad: &[T], lr: f64, l2: f64) -> Result<()> {
        check_rate("learning rate", lr)?;
        for (what, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::InvalidConfig(format!("{what} must be in [0, 1), got {b}")));
            }
        }
        let t = self.step.max(1);
        // `powi` for every step a run reaches; past i32 (only from a restored count) no wrap-around.
        let pow = |b: f64| i32::try_from(t).map_or_else(|_| b.powf(t as f64), |t| b.powi(t));
        let bias1 = 1.0 - pow(self.beta1);
        let bias2 = 1.0 - pow(self.beta2);
        let (b1, b2, eps) = (T::cast(self.beta1), T::cast(self.beta2), T::cast(self.eps));
        let (l2, step) = (T::cast(l2), T::cast(lr / bias1));
        let inv_sqrt_bias2 = T::cast(1.0 / bias2.sqrt());
        let n = p.value.len().min(grad.len());
        let m = SharedSlice::new(&mut self.first.get(index, n, &p.name)?[..n]);
        let v = SharedSlice::new(&mut self.second.get(index, n, &p.name)?[..n]);
        let w = SharedSlice::new(&mut p.value[..n]);
        for_ranges(n, PAR_MIN_ELEMENTS, &|r| {
            // SAFETY: `for_ranges` hands out disjoint ranges of `0..n`.
            let (w, m, v) = unsafe { (w.range(r.clone()), m.range(r.clone()), v.range(r.clone())) };
            for (((w, &g), m), v) in w.iter_mut().zip(&grad[r]).zip(m.iter_mut()).zip(v.iter_mut()) {
                let g = g + l2 * *w;
                *m = b1 * *m + (T::one() - b1) * g;
                *v = b2 * *v + (T::one() - b2) * g * g;
                *w -= step * *m / (v.sqrt() * inv_sqrt_bias2 + eps);
            }
        });
        Ok(())
    }
}

/// Adam (Kingma & Ba), as `torch.optim.Adam`: weight decay, if any, is added
/// to the gradient (L2). For decoupled decay use [`AdamW`].
#[derive(Clone, Debug)]
pub struct Adam<T> {
    lr: f64,
    weight_decay: f64,
    moments: Moments<T>,
}

impl<T: Float> Adam<T> {
    /// Adam with learning rate `lr` (typically 1e-3), betas (0.9, 0.999), eps 1e-8.
    pub fn new(lr: f64) -> Self {
        Adam { lr, weight_decay: 0.0, moments: Moments::new() }
    }

    /// Sets the moment decay rates.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.moments.beta1 = beta1;
        self.moments.beta2 = beta2;
        self
    }

    /// Sets the term added to the denominator for stability.
    pub fn eps(mut self, eps: f64) -> Self {
        self.moments.eps = eps;
        self
    }

    /// Adds `weight_decay · w` to each gradient (L2, coupled with the moments).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn begin_step(&mut self) {
        self.moments.step = self.moments.step.saturating_add(1);
    }
    fn state(&self) -> Result<OptimizerState<T>> {
        Ok(self.moments.state("adam", self.lr, self.weight_decay))
    }
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        let (moments, lr, weight_decay) = Moments::from_state(state, "adam")?;
        *self = Adam { lr, weight_decay, moments };
        Ok(())
    }
    fn update(&mut self, index: usize, p: ParamMut<'_, T>, grad: &[T]) -> Result<()> {
        check_rate("weight decay", self.weight_decay)?;
        self.moments.apply(index, p, grad, self.lr, self.weight_decay)
    }
}

/// AdamW (Loshchilov & Hutter), as `torch.optim.AdamW`: weights decay by
/// `lr · weight_decay · w` each step, separately from the adaptive update.
#[derive(Clone, Debug)]
pub struct AdamW<T> {
    lr: f64,
    weight_decay: f64,
    moments: Moments<T>,
}

impl<T: Float> AdamW<T> {
    /// AdamW with learning rate `lr` and decoupled weight decay (PyTorch's default is 0.01).
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        AdamW { lr, weight_decay, moments: Moments::new() }
    }

    /// Sets the moment decay rates.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.moments.beta1 = beta1;
        self.moments.beta2 = beta2;
        self
    }

    /// Sets the term added to the denominator for stability.
    pub fn eps(mut self, eps: f64) -> Self {
        self.moments.eps = eps;
        self
    }
}

impl<T: Float> Optimizer<T> for AdamW<T> {
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn begin_step(&mut self) {
        self.moments.step = self.moments.step.saturating_add(1);
    }
    fn state(&self) -> Result<OptimizerState<T>> {
        Ok(self.moments.state("adamw", self.lr, self.weight_decay))
    }
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        let (moments, lr, weight_decay) = Moments::from_state(state, "adamw")?;
        *self = AdamW { lr, weight_decay, moments };
        Ok(())
    }
    fn update(&mut self, index: usize, p: ParamMut<'_, T>, grad: &[T]) -> Result<()> {
        check_rate("weight decay", self.weight_decay)?;
        let decay = T::one() - T::cast(self.lr * self.weight_decay);
        p.value.iter_mut().for_each(|w| *w *= decay);
        self.moments.apply(index, p, grad, self.lr, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parameter vector `w`, updated `steps` times with gradient `grad(w)`.
    fn run<O: Optimizer<f64>>(opt: &mut O, w: &mut [f64], steps: usize, grad: impl Fn(&[f64]) -> Vec<f64>) {
        for _ in 0..steps {
            let g = grad(w);
            opt.begin_step();
            opt.update(0, ParamMut { name: ParamPath::ROOT.join("w"), shape: &[w.len()], value: w }, &g)
                .unwrap();
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
}
