//! Stochastic gradient descent ([`Sgd`]): plain, with momentum or Nesterov
//! momentum, and with L2 weight decay, each as one element-wise [`Rule`].

use super::finite::{self, NonFiniteUpdate, Rule};
use super::groups::{Groups, Settings};
use super::{check_rate, Optimizer, OptimizerState, ParamGroup, Slots};
use crate::error::Result;
use crate::float::Float;
use crate::params::{ParamMut, Params};

/// Stochastic gradient descent, with optional momentum, Nesterov momentum and
/// (L2) weight decay, as in `torch.optim.SGD` (no dampening).
#[derive(Clone, Debug)]
pub struct Sgd<T> {
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    velocity: Slots<T>,
    groups: Groups,
}

impl<T: Float> Sgd<T> {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            velocity: Slots(Vec::new()),
            groups: Groups::default(),
        }
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

    /// Other settings for the parameters `group` selects ([`ParamGroup`]).
    pub fn group(mut self, group: ParamGroup) -> Self {
        self.groups.push(group);
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
        let velocity = Slots(slots.remove(0));
        let groups = std::mem::take(&mut self.groups);
        *self = Sgd { lr, momentum, nesterov: nesterov != 0.0, weight_decay, velocity, groups };
        Ok(())
    }

    fn update(&mut self, index: usize, p: ParamMut<'_, T>, grad: &[T]) -> Result<()> {
        let n = p.value.len().min(grad.len());
        match self.rule(self.groups.settings_of(&p.name, p.shape, self.settings()))? {
            Step::Plain(rule) => finite::write_param(&rule, p.value, grad, []),
            Step::Momentum(rule) => {
                let v = self.velocity.get(index, n, &p.name)?;
                finite::write_param(&rule, p.value, grad, [v]);
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
        let (momentum, groups) = (self.momentum, &self.groups);
        let rates = |i| rates(momentum, groups.settings(i, base));
        if self.momentum == 0.0 {
            finite::step(&|i| rates(i).map(|(lr, wd)| Plain { lr, wd }), [], net, grads, || ())
        } else {
            let (mu, nesterov) = (T::cast(self.momentum), self.nesterov);
            let rule = |i| rates(i).map(|(lr, wd)| Momentum { lr, wd, mu, nesterov });
            finite::step(&rule, [&mut self.velocity], net, grads, || ())
        }
    }
}

impl<T: Float> Sgd<T> {
    /// This step's rule, once the settings are checked (a schedule may change the rate between steps).
    fn rule(&self, settings: Settings) -> Result<Step<T>> {
        let (lr, wd) = rates(self.momentum, settings)?;
        Ok(if self.momentum == 0.0 {
            Step::Plain(Plain { lr, wd })
        } else {
            Step::Momentum(Momentum { lr, wd, mu: T::cast(self.momentum), nesterov: self.nesterov })
        })
    }

    /// The optimizer's own learning rate and weight decay.
    fn settings(&self) -> Settings {
        Settings { lr: self.lr, weight_decay: self.weight_decay }
    }
}

/// The learning rate and weight decay of `settings`, once every setting is checked.
fn rates<T: Float>(momentum: f64, settings: Settings) -> Result<(T, T)> {
    check_rate("learning rate", settings.lr)?;
    check_rate("momentum", momentum)?;
    check_rate("weight decay", settings.weight_decay)?;
    Ok((T::cast(settings.lr), T::cast(settings.weight_decay)))
}

/// SGD's rule for this step: with or without a momentum buffer.
enum Step<T> {
    Plain(Plain<T>),
    Momentum(Momentum<T>),
}

/// `w -= lr · (g + wd · w)`.
struct Plain<T> {
    lr: T,
    wd: T,
}

impl<T: Float> Rule<T, 0> for Plain<T> {
    const SLOTS: [&'static str; 0] = [];

    #[inline(always)]
    fn next(&self, w: T, g: T, _: [T; 0]) -> (T, [T; 0]) {
        (w - self.lr * (g + self.wd * w), [])
    }
}

/// Heavy-ball or Nesterov momentum on `g + wd · w`, as `torch.optim.SGD` without dampening.
struct Momentum<T> {
    lr: T,
    wd: T,
    mu: T,
    nesterov: bool,
}

impl<T: Float> Rule<T, 1> for Momentum<T> {
    const SLOTS: [&'static str; 1] = ["momentum_buffer"];

    #[inline(always)]
    fn next(&self, w: T, g: T, [v]: [T; 1]) -> (T, [T; 1]) {
        let g = g + self.wd * w;
        // PyTorch starts the buffer at the first gradient; from zero, `mu·0 + g` is the same.
        let v = self.mu * v + g;
        let step = if self.nesterov { g + self.mu * v } else { v };
        (w - self.lr * step, [v])
    }
}
