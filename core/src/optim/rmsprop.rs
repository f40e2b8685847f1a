//! [`RmsProp`]: plain, with momentum, centered, or both, each as one element-wise [`Rule`].

use super::finite::{self, NonFiniteUpdate, Rule};
use super::groups::{Groups, Settings};
use super::{check_rate, check_unit, Optimizer, OptimizerState, ParamGroup, Slots};
use crate::error::Result;
use crate::float::Float;
use crate::params::{ParamMut, Params};

/// RMSprop (Hinton), as `torch.optim.RMSprop`: the gradient divided by a running root mean
/// square of past gradients, optionally centered (minus the running mean's square) and with
/// momentum. Defaults as PyTorch's: alpha 0.99, eps 1e-8, no momentum, not centered.
///
/// ```
/// use staticnet::optim::RmsProp;
/// let opt = RmsProp::<f32>::new(1e-3).alpha(0.9).momentum(0.9).centered(true);
/// # let _ = opt;
/// ```
#[derive(Clone, Debug)]
pub struct RmsProp<T> {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    step: u64,
    square_avg: Slots<T>,
    momentum_buffer: Slots<T>,
    grad_avg: Slots<T>,
    groups: Groups,
}

impl<T: Float> RmsProp<T> {
    /// RMSprop with learning rate `lr` (PyTorch's default is 1e-2).
    pub fn new(lr: f64) -> Self {
        RmsProp {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            step: 0,
            square_avg: Slots(Vec::new()),
            momentum_buffer: Slots(Vec::new()),
            grad_avg: Slots(Vec::new()),
            groups: Groups::default(),
        }
    }

    /// The smoothing constant of the running averages, in [0, 1].
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// The term added to the denominator for stability.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Adds `weight_decay · w` to each gradient (L2).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Momentum on the normalised gradient (0 for none).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Normalises by the running variance (minus the running mean's square) instead of the second moment.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
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
    fn rule(&self, settings: Settings) -> Result<RmsRule<T>> {
        self.hyper().rule(settings)
    }

    /// The settings every parameter shares.
    fn hyper(&self) -> Hyper {
        Hyper { alpha: self.alpha, eps: self.eps, momentum: self.momentum }
    }
}

/// RMSprop's settings that no group changes.
#[derive(Clone, Copy)]
struct Hyper {
    alpha: f64,
    eps: f64,
    momentum: f64,
}

impl Hyper {
    /// The rule with `settings`, once every setting is checked.
    fn rule<T: Float>(self, settings: Settings) -> Result<RmsRule<T>> {
        check_rate("learning rate", settings.lr)?;
        check_rate("momentum", self.momentum)?;
        check_rate("weight decay", settings.weight_decay)?;
        check_rate("eps", self.eps)?;
        check_unit("alpha", self.alpha)?;
        Ok(RmsRule {
            lr: T::cast(settings.lr),
            alpha: T::cast(self.alpha),
            one_minus_alpha: T::cast(1.0 - self.alpha),
            eps: T::cast(self.eps),
            wd: T::cast(settings.weight_decay),
            mu: T::cast(self.momentum),
        })
    }
}

/// The constants of one RMSprop step, shared by the four variants' rules.
struct RmsRule<T> {
    lr: T,
    alpha: T,
    one_minus_alpha: T,
    eps: T,
    wd: T,
    mu: T,
}

impl<T: Float> RmsRule<T> {
    /// The L2-decayed gradient and the new square average.
    #[inline(always)]
    fn square(&self, w: T, g: T, sq: T) -> (T, T) {
        let g = g + self.wd * w;
        (g, self.alpha * sq + self.one_minus_alpha * g * g)
    }

    /// `grad_avg.lerp_(g, 1 − alpha)` and the centered denominator `√(sq − ḡ²) + eps`.
    #[inline(always)]
    fn centered(&self, g: T, sq: T, ga: T) -> (T, T) {
        let ga = ga + self.one_minus_alpha * (g - ga);
        (ga, (sq - ga * ga).sqrt() + self.eps)
    }
}

/// RMSprop's four variants, each a rule over its own slots.
struct Plain<T>(RmsRule<T>);
struct WithMomentum<T>(RmsRule<T>);
struct Centered<T>(RmsRule<T>);
struct CenteredMomentum<T>(RmsRule<T>);

impl<T: Float> Rule<T, 1> for Plain<T> {
    const SLOTS: [&'static str; 1] = ["square_avg"];
    #[inline(always)]
    fn next(&self, w: T, g: T, [sq]: [T; 1]) -> (T, [T; 1]) {
        let r = &self.0;
        let (g, sq) = r.square(w, g, sq);
        (w - r.lr * (g / (sq.sqrt() + r.eps)), [sq])
    }
}

impl<T: Float> Rule<T, 2> for WithMomentum<T> {
    const SLOTS: [&'static str; 2] = ["square_avg", "momentum_buffer"];
    #[inline(always)]
    fn next(&self, w: T, g: T, [sq, buf]: [T; 2]) -> (T, [T; 2]) {
        let r = &self.0;
        let (g, sq) = r.square(w, g, sq);
        let buf = r.mu * buf + g / (sq.sqrt() + r.eps);
        (w - r.lr * buf, [sq, buf])
    }
}

impl<T: Float> Rule<T, 2> for Centered<T> {
    const SLOTS: [&'static str; 2] = ["square_avg", "grad_avg"];
    #[inline(always)]
    fn next(&self, w: T, g: T, [sq, ga]: [T; 2]) -> (T, [T; 2]) {
        let r = &self.0;
        let (g, sq) = r.square(w, g, sq);
        let (ga, avg) = r.centered(g, sq, ga);
        (w - r.lr * (g / avg), [sq, ga])
    }
}

impl<T: Float> Rule<T, 3> for CenteredMomentum<T> {
    const SLOTS: [&'static str; 3] = ["square_avg", "grad_avg", "momentum_buffer"];
    #[inline(always)]
    fn next(&self, w: T, g: T, [sq, ga, buf]: [T; 3]) -> (T, [T; 3]) {
        let r = &self.0;
        let (g, sq) = r.square(w, g, sq);
        let (ga, avg) = r.centered(g, sq, ga);
        let buf = r.mu * buf + g / avg;
        (w - r.lr * buf, [sq, ga, buf])
    }
}

impl<T: Float> Optimizer<T> for RmsProp<T> {
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
            ("alpha", self.alpha),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("momentum", self.momentum),
            ("centered", if self.centered { 1.0 } else { 0.0 }),
        ];
        let mut slots = vec![("square_avg".to_string(), self.square_avg.0.clone())];
        if self.momentum != 0.0 {
            slots.insert(0, ("momentum_buffer".into(), self.momentum_buffer.0.clone()));
        }
        if self.centered {
            slots.insert(0, ("grad_avg".into(), self.grad_avg.0.clone()));
        }
        Ok(OptimizerState {
            kind: "rmsprop".into(),
            hyper: hyper.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            step: self.step,
            slots,
        })
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        state.check_kind("rmsprop")?;
        state.check_values()?;
        let (lr, alpha, eps) = (state.hyper("lr")?, state.hyper("alpha")?, state.hyper("eps")?);
        let (weight_decay, momentum) = (state.hyper("weight_decay")?, state.hyper("momentum")?);
        let centered = state.hyper("centered")? != 0.0;
        let mut needed = vec!["square_avg"];
        needed.extend(centered.then_some("grad_avg"));
        needed.extend((momentum != 0.0).then_some("momentum_buffer"));
        state.require_slots(&needed)?;
        let step = state.step;
        // Only the slots this variant keeps (`take_slots` refuses any other).
        let mut slots: Vec<_> = state.take_slots("rmsprop", &needed)?.into_iter().map(Some).collect();
        let mut slot = |name| {
            let k = needed.iter().position(|n| *n == name);
            Slots(k.and_then(|k| slots.get_mut(k)?.take()).unwrap_or_default())
        };
        let (square_avg, momentum_buffer, grad_avg) =
            (slot("square_avg"), slot("momentum_buffer"), slot("grad_avg"));
        *self = RmsProp {
            lr,
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
            step,
            square_avg,
            momentum_buffer,
            grad_avg,
            groups: std::mem::take(&mut self.groups),
        };
        Ok(())
    }

    fn update(&mut self, index: usize, p: ParamMut<'_, T>, grad: &[T]) -> Result<()> {
        let n = p.value.len().min(grad.len());
        let rule = self.rule(self.groups.settings_of(&p.name, p.shape, self.settings()))?;
        let sq = self.square_avg.get(index, n, &p.name)?;
        match (self.momentum != 0.0, self.centered) {
            (false, false) => finite::write_param(&Plain(rule), p.value, grad, [sq]),
            (true, false) => {
                let buf = self.momentum_buffer.get(index, n, &p.name)?;
                finite::write_param(&WithMomentum(rule), p.value, grad, [sq, buf]);
            }
            (false, true) => {
                let ga = self.grad_avg.get(index, n, &p.name)?;
                finite::write_param(&Centered(rule), p.value, grad, [sq, ga]);
            }
            (true, true) => {
                let ga = self.grad_avg.get(index, n, &p.name)?;
                let buf = self.momentum_buffer.get(index, n, &p.name)?;
                finite::write_param(&CenteredMomentum(rule), p.value, grad, [sq, ga, buf]);
            }
        }
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
        let (hyper, groups) = (self.hyper(), &self.groups);
        let rule = |i| hyper.rule(groups.settings(i, base));
        let (sq, buf, ga) = (&mut self.square_avg, &mut self.momentum_buffer, &mut self.grad_avg);
        let step = &mut self.step;
        let count = || *step = step.saturating_add(1);
        match (self.momentum != 0.0, self.centered) {
            (false, false) => finite::step(&|i| rule(i).map(Plain), [sq], net, grads, count),
            (true, false) => finite::step(&|i| rule(i).map(WithMomentum), [sq, buf], net, grads, count),
            (false, true) => finite::step(&|i| rule(i).map(Centered), [sq, ga], net, grads, count),
            (true, true) => {
                finite::step(&|i| rule(i).map(CenteredMomentum), [sq, ga, buf], net, grads, count)
            }
        }
    }
}
