//! [`Adam`] and [`AdamW`]: the moments and step count they share, and their
//! element-wise [`Rule`]s.

use super::finite::{self, NonFiniteUpdate, Rule};
use super::groups::{Groups, Settings};
use super::{check_rate, Optimizer, OptimizerState, ParamGroup, Slots};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::{ParamMut, Params};

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

    /// The settings without the state, for building rules while the state is borrowed.
    fn hyper(&self) -> Self {
        let (first, second) = (Slots(Vec::new()), Slots(Vec::new()));
        Moments { beta1: self.beta1, beta2: self.beta2, eps: self.eps, step: self.step, first, second }
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

    /// The rule of step `t` (from 1) at rate `lr` with the L2 term `l2` in the
    /// gradient, once the settings are checked (a schedule may change the rate
    /// between steps).
    fn rule(&self, t: u64, lr: f64, l2: f64) -> Result<AdamRule<T>> {
        check_rate("learning rate", lr)?;
        for (what, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::InvalidConfig(format!("{what} must be in [0, 1), got {b}")));
            }
        }
        let t = t.max(1);
        // `powi` for every step a run reaches; past i32 (only from a restored count) no wrap-around.
        let pow = |b: f64| i32::try_from(t).map_or_else(|_| b.powf(t as f64), |t| b.powi(t));
        let bias1 = 1.0 - pow(self.beta1);
        let bias2 = 1.0 - pow(self.beta2);
        let (b1, b2) = (T::cast(self.beta1), T::cast(self.beta2));
        let max = T::max_value().map_or(f64::MAX, |m| m.as_f64());
        // From eps as the update uses it, in T (1e-50 is 0 in f32). NaN or 0: never sure,
        // every element takes the exact test.
        let eps = T::cast(self.eps).as_f64();
        let limit = if eps > 0.0 { (eps * max / 4.0).min(max) } else { -1.0 };
        Ok(AdamRule {
            max: T::cast(max),
            quarter_max: T::cast(max / 4.0),
            limit: T::cast(limit),
            b1,
            b2,
            one_minus_b1: T::one() - b1,
            one_minus_b2: T::one() - b2,
            eps: T::cast(self.eps),
            l2: T::cast(l2),
            step: T::cast(lr / bias1),
            inv_sqrt_bias2: T::cast(1.0 / bias2.sqrt()),
        })
    }

    /// Updates parameter `index` and its moments by `rule`.
    fn update(&mut self, rule: &impl Rule<T, 2>, index: usize, p: ParamMut<'_, T>, grad: &[T]) -> Result<()> {
        let n = p.value.len().min(grad.len());
        let m = self.first.get(index, n, &p.name)?;
        let v = self.second.get(index, n, &p.name)?;
        finite::write_param(rule, p.value, grad, [m, v]);
        Ok(())
    }

    /// [`Optimizer::step_if_finite`] by `rule`, the rule of step `t`; counts the step if it is taken.
    fn step_if_finite<N: Params<T>, R: Rule<T, 2>>(
        &mut self,
        rule: &dyn Fn(usize) -> Result<R>,
        t: u64,
        net: &mut N,
        grads: &N::Gradients,
    ) -> Result<Option<NonFiniteUpdate>> {
        let step = &mut self.step;
        finite::step(rule, [&mut self.first, &mut self.second], net, grads, || *step = t)
    }
}

/// `w -= lr · m̂ / (√v̂ + eps)` with `g + l2 · w` as the gradient; `step` is
/// `lr / (1 − β₁ᵗ)` and `inv_sqrt_bias2` is `1 / √(1 − β₂ᵗ)`. `max` is the
/// largest finite value, `quarter_max` a quarter of it, and `limit` is
/// `eps · max / 4` (at most `max`; −1 when eps, in `T`, is not positive), for
/// [`Rule::surely_finite`].
struct AdamRule<T> {
    max: T,
    quarter_max: T,
    limit: T,
    b1: T,
    b2: T,
    one_minus_b1: T,
    one_minus_b2: T,
    eps: T,
    l2: T,
    step: T,
    inv_sqrt_bias2: T,
}

impl<T: Float> Rule<T, 2> for AdamRule<T> {
    const SLOTS: [&'static str; 2] = ["exp_avg", "exp_avg_sq"];

    #[inline(always)]
    fn next(&self, w: T, g: T, [m, v]: [T; 2]) -> (T, [T; 2]) {
        let g = g + self.l2 * w;
        let m = self.b1 * m + self.one_minus_b1 * g;
        let v = self.b2 * v + self.one_minus_b2 * g * g;
        (w - self.step * m / (v.sqrt() * self.inv_sqrt_bias2 + self.eps), [m, v])
    }

    /// Without the square root and the division, which cost as much as the
    /// rest of the check: with `m` finite, `0 ≤ v ≤ max` and eps > 0, the
    /// denominator `√v · c + eps` is at least eps (rounding is monotonic), so
    /// `|step · m| ≤ eps · max/4` bounds the update by about max/4 and, with
    /// `|w| ≤ max/4`, the new weight by about max/2: finite.
    #[inline(always)]
    fn surely_finite(&self, w: T, g: T, [m, v]: [T; 2]) -> bool {
        let g = g + self.l2 * w;
        let m = self.b1 * m + self.one_minus_b1 * g;
        let v = self.b2 * v + self.one_minus_b2 * g * g;
        ((self.step * m).abs() <= self.limit)
            & (m.abs() <= self.max)
            & (v >= T::zero())
            & (v <= self.max)
            & (w.abs() <= self.quarter_max)
    }
}

/// AdamW: the weight decays by `decay = 1 − lr · weight_decay`, then Adam's rule without L2.
struct AdamWRule<T> {
    decay: T,
    adam: AdamRule<T>,
}

impl<T: Float> Rule<T, 2> for AdamWRule<T> {
    const SLOTS: [&'static str; 2] = AdamRule::<T>::SLOTS;

    #[inline(always)]
    fn next(&self, w: T, g: T, state: [T; 2]) -> (T, [T; 2]) {
        self.adam.next(w * self.decay, g, state)
    }

    #[inline(always)]
    fn surely_finite(&self, w: T, g: T, state: [T; 2]) -> bool {
        self.adam.surely_finite(w * self.decay, g, state)
    }
}

/// The `Optimizer` impl of [`Adam`] and [`AdamW`]: the same but for the
/// name their state is saved under and the rule of a step (`self.rule(t)`).
macro_rules! adam_optimizer {
    ($name:ident, $key:literal) => {
        impl<T: Float> Optimizer<T> for $name<T> {
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
                Ok(self.moments.state($key, self.lr, self.weight_decay))
            }
            fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
                let (moments, lr, weight_decay) = Moments::from_state(state, $key)?;
                let groups = std::mem::take(&mut self.groups);
                *self = $name { lr, weight_decay, moments, groups };
                Ok(())
            }
            fn update(&mut self, index: usize, p: ParamMut<'_, T>, grad: &[T]) -> Result<()> {
                let settings = self.groups.settings_of(&p.name, p.shape, self.settings());
                let rule = self.rule(self.moments.step, settings)?;
                self.moments.update(&rule, index, p, grad)
            }
            fn step_if_finite<N: Params<T>>(
                &mut self,
                net: &mut N,
                grads: &N::Gradients,
                _undo: &mut Vec<T>,
            ) -> Result<Option<NonFiniteUpdate>> {
                let t = self.moments.step.saturating_add(1);
                self.groups.assign(&*net);
                let base = self.settings();
                for settings in self.groups.all(base) {
                    self.rule(t, settings)?;
                }
                let (hyper, groups) = (self.moments.hyper(), &self.groups);
                let rule = |i| Self::rule_of(&hyper, t, groups.settings(i, base));
                self.moments.step_if_finite(&rule, t, net, grads)
            }
        }

        impl<T: Float> $name<T> {
            /// Other settings for the parameters `group` selects ([`ParamGroup`]).
            pub fn group(mut self, group: ParamGroup) -> Self {
                self.groups.push(group);
                self
            }

            /// The optimizer's own learning rate and weight decay.
            fn settings(&self) -> Settings {
                Settings { lr: self.lr, weight_decay: self.weight_decay }
            }
        }
    };
}

/// Adam (Kingma & Ba), as `torch.optim.Adam`: weight decay, if any, is added
/// to the gradient (L2). For decoupled decay use [`AdamW`].
#[derive(Clone, Debug)]
pub struct Adam<T> {
    lr: f64,
    weight_decay: f64,
    moments: Moments<T>,
    groups: Groups,
}

impl<T: Float> Adam<T> {
    /// Adam with learning rate `lr` (typically 1e-3), betas (0.9, 0.999), eps 1e-8.
    pub fn new(lr: f64) -> Self {
        Adam { lr, weight_decay: 0.0, moments: Moments::new(), groups: Groups::default() }
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

adam_optimizer!(Adam, "adam");

impl<T: Float> Adam<T> {
    /// The rule of step `t` with `settings`.
    fn rule(&self, t: u64, settings: Settings) -> Result<AdamRule<T>> {
        Self::rule_of(&self.moments, t, settings)
    }

    /// The rule of step `t` with `settings` and the moments' constants.
    fn rule_of(moments: &Moments<T>, t: u64, settings: Settings) -> Result<AdamRule<T>> {
        check_rate("weight decay", settings.weight_decay)?;
        moments.rule(t, settings.lr, settings.weight_decay)
    }
}

/// AdamW (Loshchilov & Hutter), as `torch.optim.AdamW`: weights decay by
/// `lr · weight_decay · w` each step, separately from the adaptive update.
#[derive(Clone, Debug)]
pub struct AdamW<T> {
    lr: f64,
    weight_decay: f64,
    moments: Moments<T>,
    groups: Groups,
}

impl<T: Float> AdamW<T> {
    /// AdamW with learning rate `lr` and decoupled weight decay (PyTorch's default is 0.01).
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        AdamW { lr, weight_decay, moments: Moments::new(), groups: Groups::default() }
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

adam_optimizer!(AdamW, "adamw");

impl<T: Float> AdamW<T> {
    /// The rule of step `t` with `settings`.
    fn rule(&self, t: u64, settings: Settings) -> Result<AdamWRule<T>> {
        Self::rule_of(&self.moments, t, settings)
    }

    /// The rule of step `t` with `settings` and the moments' constants.
    fn rule_of(moments: &Moments<T>, t: u64, settings: Settings) -> Result<AdamWRule<T>> {
        check_rate("weight decay", settings.weight_decay)?;
        let decay = T::one() - T::cast(settings.lr * settings.weight_decay);
        Ok(AdamWRule { decay, adam: moments.rule(t, settings.lr, 0.0)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values at and past every edge: zeros, tiny, ordinary, huge, the largest, infinities, NaN.
    fn edges<T: Float>() -> Vec<T> {
        let max = T::max_value().map_or(f64::MAX, |m| m.as_f64());
        let mut v =
            vec![0.0, 1e-30, 1e-3, 1.0, 3e19, 1e30, max / 4.0, max / 3.0, max, f64::INFINITY, f64::NAN];
        v.extend(v.clone().iter().map(|x| -x));
        v.into_iter().map(T::cast).collect()
    }

    /// `surely_finite` may only say yes when `next` is finite, for every rule setting and element.
    fn the_quick_test_never_lies<T: Float>() {
        let (values, mut sure) = (edges::<T>(), 0usize);
        let settings = [
            (1e-3, 1e-8, 0.0, 1.0, 0.9),
            (1e30, 1e-8, 0.1, 0.9, 0.9),
            (1e39, 1e-8, 0.0, 1.0, 0.0),
            (1e-3, 0.0, 0.0, 1.0, 0.9),
            // 0 in f32: the bound must come from eps as the update sees it.
            (1e-3, 1e-50, 0.0, 1.0, 0.9),
            (1e-3, 1e30, 0.0, 1.0, 0.99999997),
            (1e-3, f64::NAN, 0.0, 1.0, 0.9),
            (0.0, 1e-8, 1e30, 1e30, 0.9),
        ];
        for (lr, eps, l2, decay, beta1) in settings {
            for t in [1, 1000] {
                let mut moments = Moments::<T>::new();
                (moments.eps, moments.beta1) = (eps, beta1);
                let adam = moments.rule(t, lr, l2).unwrap();
                let adamw = AdamWRule { decay: T::cast(decay), adam: moments.rule(t, lr, 0.0).unwrap() };
                for &w in &values {
                    for &g in &values {
                        for &m in &values {
                            for &v in values.iter().filter(|v| **v >= T::zero()) {
                                for (quick, (new, s)) in [
                                    (adam.surely_finite(w, g, [m, v]), adam.next(w, g, [m, v])),
                                    (adamw.surely_finite(w, g, [m, v]), adamw.next(w, g, [m, v])),
                                ] {
                                    let finite = new.is_finite() && s.iter().all(|x| x.is_finite());
                                    assert!(
                                        !quick || finite,
                                        "lr {lr} eps {eps} b1 {beta1} t {t}: {w} {g} {m} {v}"
                                    );
                                    sure += usize::from(quick);
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(sure > 10_000, "the quick test must say yes for ordinary values: {sure}");
    }

    #[test]
    fn the_quick_finiteness_test_never_passes_a_non_finite_update() {
        the_quick_test_never_lies::<f32>();
        the_quick_test_never_lies::<f64>();
    }
}
