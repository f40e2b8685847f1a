//! [`Adagrad`] and [`Adadelta`]: per-element rates from accumulated squared gradients, each as
//! one element-wise [`Rule`].

use super::finite::{self, NonFiniteUpdate, Rule};
use super::groups::{Groups, Settings};
use super::{check_rate, check_unit, Optimizer, OptimizerState, ParamGroup, Slots};
use crate::error::Result;
use crate::float::Float;
use crate::params::{ParamMut, ParamPath, Params};

/// Adagrad (Duchi et al.), as `torch.optim.Adagrad`: each element's step is divided by the root
/// of the sum of its past squared gradients. Defaults as PyTorch's: no learning-rate decay, no
/// weight decay, initial accumulator 0, eps 1e-10.
///
/// ```
/// use staticnet::optim::Adagrad;
/// let opt = Adagrad::<f32>::new(1e-2).lr_decay(1e-4).initial_accumulator_value(0.1);
/// # let _ = opt;
/// ```
#[derive(Clone, Debug)]
pub struct Adagrad<T> {
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    initial_accumulator_value: f64,
    eps: f64,
    step: u64,
    sum: Slots<T>,
    groups: Groups,
}

impl<T: Float> Adagrad<T> {
    /// Adagrad with learning rate `lr` (PyTorch's default is 1e-2).
    pub fn new(lr: f64) -> Self {
        Adagrad {
            lr,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            step: 0,
            sum: Slots(Vec::new()),
            groups: Groups::default(),
        }
    }

    /// Step `t` (from 1) runs at `lr / (1 + (t − 1) · lr_decay)`.
    pub fn lr_decay(mut self, lr_decay: f64) -> Self {
        self.lr_decay = lr_decay;
        self
    }

    /// Adds `weight_decay · w` to each gradient (L2).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// The value every element's sum of squares starts from.
    pub fn initial_accumulator_value(mut self, value: f64) -> Self {
        self.initial_accumulator_value = value;
        self
    }

    /// The term added to the denominator for stability.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Other settings for the parameters `group` selects ([`ParamGroup`]).
    pub fn group(mut self, group: ParamGroup) -> Self {
        self.groups.push(group);
        self
    }

    /// The optimizer's own learning rate and weight decay.
    fn settings(&self) -> Settings {
        Settings { lr: self.lr, weight_decay: self.weight_decay }
    }

    /// The rule of step `t` (from 1) with `settings`, once they are checked.
    fn rule(&self, t: u64, settings: Settings) -> Result<AdagradRule<T>> {
        rule_of(self.lr_decay, self.initial_accumulator_value, self.eps, t, settings)
    }

    /// Creates the sums a step is about to need at `initial_accumulator_value` (PyTorch creates
    /// them with the optimizer; here on the first step, like every other state).
    fn fill_sums<N: Params<T>>(&mut self, net: &mut N, grads: &N::Gradients) {
        let (sum, init) = (&mut self.sum, T::cast(self.initial_accumulator_value));
        let mut index = 0;
        net.visit_params_with_grads(grads, &ParamPath::ROOT, &mut |p, g| {
            sum.fill_missing(index, p.value.len().min(g.len()), init);
            index += 1;
        });
    }
}

/// Adagrad's rule of step `t` (from 1) with `settings`, once every setting is checked.
fn rule_of<T: Float>(
    lr_decay: f64,
    init: f64,
    eps: f64,
    t: u64,
    settings: Settings,
) -> Result<AdagradRule<T>> {
    check_rate("learning rate", settings.lr)?;
    check_rate("lr_decay", lr_decay)?;
    check_rate("weight decay", settings.weight_decay)?;
    check_rate("initial_accumulator_value", init)?;
    check_rate("eps", eps)?;
    let clr = settings.lr / (1.0 + (t.max(1) - 1) as f64 * lr_decay);
    Ok(AdagradRule { clr: T::cast(clr), wd: T::cast(settings.weight_decay), eps: T::cast(eps) })
}

/// `sum += g²; w -= clr · g / (√sum + eps)` with `g + wd · w` as the gradient.
struct AdagradRule<T> {
    clr: T,
    wd: T,
    eps: T,
}

impl<T: Float> Rule<T, 1> for AdagradRule<T> {
    const SLOTS: [&'static str; 1] = ["sum"];
    #[inline(always)]
    fn next(&self, w: T, g: T, [sum]: [T; 1]) -> (T, [T; 1]) {
        let g = g + self.wd * w;
        let sum = sum + g * g;
        (w - self.clr * (g / (sum.sqrt() + self.eps)), [sum])
    }
}

impl<T: Float> Optimizer<T> for Adagrad<T> {
    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn begin_step(&mut self) {
        self.step = self.step.saturating_add(1);
    }

    fn state(&self) -> Result<OptimizerState<T>> {
        let hyper = [
            ("lr", self.lr),
            ("lr_decay", self.lr_decay),
            ("weight_decay", self.weight_decay),
            ("initial_accumulator_value", self.initial_accumulator_value),
            ("eps", self.eps),
        ];
        Ok(OptimizerState {
            kind: "adagrad".into(),
            hyper: hyper.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            step: self.step,
            slots: vec![("sum".into(), self.sum.0.clone())],
        })
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        state.check_kind("adagrad")?;
        state.check_values()?;
        let (lr, lr_decay, eps) = (state.hyper("lr")?, state.hyper("lr_decay")?, state.hyper("eps")?);
        let weight_decay = state.hyper("weight_decay")?;
        let initial_accumulator_value = state.hyper("initial_accumulator_value")?;
        state.require_slots(&["sum"])?;
        let step = state.step;
        let mut slots = state.take_slots("adagrad", &["sum"])?;
        let sum = Slots(slots.pop().unwrap_or_default());
        let groups = std::mem::take(&mut self.groups);
        *self = Adagrad { lr, lr_decay, weight_decay, initial_accumulator_value, eps, step, sum, groups };
        Ok(())
    }

    fn update(&mut self, index: usize, p: ParamMut<'_, T>, grad: &[T]) -> Result<()> {
        let n = p.value.len().min(grad.len());
        let rule = self.rule(self.step, self.groups.settings_of(&p.name, p.shape, self.settings()))?;
        self.sum.fill_missing(index, n, T::cast(self.initial_accumulator_value));
        let sum = self.sum.get(index, n, &p.name)?;
        finite::write_param(&rule, p.value, grad, [sum]);
        Ok(())
    }

    fn step_if_finite<N: Params<T>>(
        &mut self,
        net: &mut N,
        grads: &N::Gradients,
        _undo: &mut Vec<T>,
    ) -> Result<Option<NonFiniteUpdate>> {
        let t = self.step.saturating_add(1);
        self.groups.assign(&*net);
        let base = self.settings();
        for settings in self.groups.all(base) {
            self.rule(t, settings)?;
        }
        if self.sum.0.is_empty() || self.sum.0.iter().any(Vec::is_empty) {
            self.fill_sums(net, grads);
        }
        let (decay, init, eps, groups) =
            (self.lr_decay, self.initial_accumulator_value, self.eps, &self.groups);
        let rule = |i| rule_of(decay, init, eps, t, groups.settings(i, base));
        let step = &mut self.step;
        finite::step(&rule, [&mut self.sum], net, grads, || *step = t)
    }
}

/// Adadelta (Zeiler), as `torch.optim.Adadelta`: steps scaled by the ratio of running root mean
/// squares of past updates and of gradients. Defaults as PyTorch's: lr 1, rho 0.9, eps 1e-6.
///
/// ```
/// use staticnet::optim::Adadelta;
/// let opt = Adadelta::<f32>::new(1.0).rho(0.95).eps(1e-6);
/// # let _ = opt;
/// ```
#[derive(Clone, Debug)]
pub struct Adadelta<T> {
    lr: f64,
    rho: f64,
    eps: f64,
    weight_decay: f64,
    step: u64,
    square_avg: Slots<T>,
    acc_delta: Slots<T>,
    groups: Groups,
}

impl<T: Float> Adadelta<T> {
    /// Adadelta scaling its updates by `lr` (PyTorch's default is 1.0).
    pub fn new(lr: f64) -> Self {
        Adadelta {
            lr,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            step: 0,
            square_avg: Slots(Vec::new()),
            acc_delta: Slots(Vec::new()),
            groups: Groups::default(),
        }
    }

    /// The decay of both running averages, in [0, 1].
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// The term added inside both square roots.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Adds `weight_decay · w` to each gradient (L2).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Other settings for the parameters `group` selects ([`ParamGroup`]).
    pub fn group(mut self, group: ParamGroup) -> Self {
        self.groups.push(group);
        self
    }

    /// The optimizer's own learning rate and weight decay.
    fn settings(&self) -> Settings {
        Settings { lr: self.lr, weight_decay: self.weight_decay }
    }

    /// This step's rule with `settings`, once they are checked.
    fn rule(&self, settings: Settings) -> Result<AdadeltaRule<T>> {
        delta_rule(self.rho, self.eps, settings)
    }
}

/// Adadelta's rule with `settings`, once every setting is checked.
fn delta_rule<T: Float>(rho: f64, eps: f64, settings: Settings) -> Result<AdadeltaRule<T>> {
    check_rate("learning rate", settings.lr)?;
    check_rate("eps", eps)?;
    check_rate("weight decay", settings.weight_decay)?;
    check_unit("rho", rho)?;
    Ok(AdadeltaRule {
        lr: T::cast(settings.lr),
        rho: T::cast(rho),
        one_minus_rho: T::cast(1.0 - rho),
        eps: T::cast(eps),
        wd: T::cast(settings.weight_decay),
    })
}

/// `v = ρv + (1−ρ)g²; δ = √(u + eps) / √(v + eps) · g; u = ρu + (1−ρ)δ²; w -= lr · δ`.
struct AdadeltaRule<T> {
    lr: T,
    rho: T,
    one_minus_rho: T,
    eps: T,
    wd: T,
}

impl<T: Float> Rule<T, 2> for AdadeltaRule<T> {
    const SLOTS: [&'static str; 2] = ["square_avg", "acc_delta"];
    #[inline(always)]
    fn next(&self, w: T, g: T, [v, u]: [T; 2]) -> (T, [T; 2]) {
        let g = g + self.wd * w;
        let v = self.rho * v + self.one_minus_rho * g * g;
        let delta = (u + self.eps).sqrt() / (v + self.eps).sqrt() * g;
        let u = self.rho * u + self.one_minus_rho * delta * delta;
        (w - self.lr * delta, [v, u])
    }
}

impl<T: Float> Optimizer<T> for Adadelta<T> {
    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn begin_step(&mut self) {
        self.step = self.step.saturating_add(1);
    }

    fn state(&self) -> Result<OptimizerState<T>> {
        let hyper =
            [("lr", self.lr), ("rho", self.rho), ("eps", self.eps), ("weight_decay", self.weight_decay)];
        Ok(OptimizerState {
            kind: "adadelta".into(),
            hyper: hyper.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            step: self.step,
            slots: vec![
                ("acc_delta".into(), self.acc_delta.0.clone()),
                ("square_avg".into(), self.square_avg.0.clone()),
            ],
        })
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        state.check_kind("adadelta")?;
        state.check_values()?;
        let (lr, rho, eps) = (state.hyper("lr")?, state.hyper("rho")?, state.hyper("eps")?);
        let weight_decay = state.hyper("weight_decay")?;
        state.require_slots(&["square_avg", "acc_delta"])?;
        let step = state.step;
        let mut slots = state.take_slots("adadelta", &["square_avg", "acc_delta"])?;
        let acc_delta = Slots(slots.pop().unwrap_or_default());
        let square_avg = Slots(slots.pop().unwrap_or_default());
        let groups = std::mem::take(&mut self.groups);
        *self = Adadelta { lr, rho, eps, weight_decay, step, square_avg, acc_delta, groups };
        Ok(())
    }

    fn update(&mut self, index: usize, p: ParamMut<'_, T>, grad: &[T]) -> Result<()> {
        let n = p.value.len().min(grad.len());
        let rule = self.rule(self.groups.settings_of(&p.name, p.shape, self.settings()))?;
        let v = self.square_avg.get(index, n, &p.name)?;
        let u = self.acc_delta.get(index, n, &p.name)?;
        finite::write_param(&rule, p.value, grad, [v, u]);
        Ok(())
    }

    fn step_if_finite<N: Params<T>>(
        &mut self,
        net: &mut N,
        grads: &N::Gradients,
        _undo: &mut Vec<T>,
    ) -> Result<Option<NonFiniteUpdate>> {
        self.groups.assign(&*net);
        let base = self.settings();
        for settings in self.groups.all(base) {
            self.rule(settings)?;
        }
        let (rho, eps, groups) = (self.rho, self.eps, &self.groups);
        let rule = |i| delta_rule(rho, eps, groups.settings(i, base));
        let step = &mut self.step;
        let slots = [&mut self.square_avg, &mut self.acc_delta];
        finite::step(&rule, slots, net, grads, || *step = step.saturating_add(1))
    }
}
