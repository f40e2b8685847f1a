//! Optimizers: SGD (momentum, Nesterov, weight decay), Adam, AdamW, RMSprop,
//! Adagrad and Adadelta.
//!
//! Update rules follow PyTorch's `torch.optim` exactly, so hyper-parameters
//! carry over. State (momentum buffers, moments) is kept per parameter in the
//! network's visiting order and allocated on the first step only.
//!
//! [`Optimizer::state`] and [`Optimizer::load_state`] export and restore all of
//! it ([`OptimizerState`]), so a checkpoint resumes training bit for bit
//! (see [`crate::persist`] and [`crate::train::Trainer::resume`]).
//!
//! [`Optimizer::step_if_finite`], which the trainer uses, takes a step only if
//! every new weight and every new state value is finite. The optimizers here
//! compute each update twice, once to check it and once to write it, so a
//! refused step leaves the weights and the optimizer's state exactly as they
//! were without copying them; other optimizers get a default that
//! copies the weights and restores them.
//!
//! This file holds the [`Optimizer`] trait and the state shared by every
//! optimizer; the optimizers, the two-pass step and parameter groups
//! ([`ParamGroup`]: other settings for some parameters) have files of their own.

mod adagrad;
mod adam;
mod finite;
mod groups;
mod rmsprop;
mod sgd;
#[cfg(test)]
mod tests;

pub use adagrad::{Adadelta, Adagrad};
pub use adam::{Adam, AdamW};
pub use finite::NonFiniteUpdate;
pub(crate) use groups::under;
pub use groups::ParamGroup;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::{ParamMut, ParamPath, Params};
use std::collections::BTreeMap;

/// Parameter tensors below this many scalars are updated on one thread.
const PAR_MIN_ELEMENTS: usize = 1 << 15;

/// Everything an optimizer carries from step to step, for checkpoints.
///
/// Slots use PyTorch's names: `momentum_buffer` ([`Sgd`]), `exp_avg` and
/// `exp_avg_sq` ([`Adam`], [`AdamW`]), `square_avg`, `momentum_buffer` and
/// `grad_avg` ([`RmsProp`]), `sum` ([`Adagrad`]), `square_avg` and `acc_delta` ([`Adadelta`]). Each slot holds one vector per
/// parameter in the network's visiting order, or none before the first step
/// (and for SGD without momentum).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T> {
    /// Which optimizer: `"sgd"`, `"adam"`, `"adamw"`, `"rmsprop"`, `"adagrad"` or `"adadelta"`.
    pub kind: String,
    /// Hyper-parameters by name (`lr`, `momentum`, `nesterov` as 0/1,
    /// `weight_decay`, `beta1`, `beta2`, `eps`).
    pub hyper: BTreeMap<String, f64>,
    /// Steps taken, for Adam's bias correction and Adagrad's decay (0 for SGD, which needs none).
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
                "centered" => (v == 0.0 || v == 1.0, "0 (false) or 1 (true)"),
                "alpha" | "rho" => ((0.0..=1.0).contains(&v), "in [0, 1]"),
                "lr" | "momentum" | "weight_decay" | "eps" | "lr_decay" | "initial_accumulator_value" => {
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
                // The slots a square root is taken of.
                let square = matches!(slot.as_str(), "exp_avg_sq" | "square_avg" | "sum" | "acc_delta");
                let bad = |v: &T| !v.is_finite() || (square && *v < T::zero());
                if let Some(i) = values.iter().position(bad) {
                    let rule = if square { "finite and non-negative" } else { "finite" };
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

    /// Refuses state past its first step that lacks one of `slots`: resuming would silently
    /// restart that state from zero.
    fn require_slots(&self, slots: &[&str]) -> Result<()> {
        match slots.iter().find(|s| self.step > 0 && !self.slots.iter().any(|(name, _)| name == *s)) {
            None => Ok(()),
            Some(slot) => Err(Error::InvalidConfig(format!(
                "{} optimizer state at step {} lacks its `{slot}` slot",
                self.kind, self.step
            ))),
        }
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

    /// One optimisation step over every parameter of `net`, taken only if every
    /// new parameter value is finite. Otherwise it returns the first parameter
    /// element (in visiting order) that would not have been ([`NonFiniteUpdate`])
    /// and the parameters keep their values. The trainer steps this way.
    ///
    /// The default copies every parameter into `undo` (memory reused from step
    /// to step), takes [`Optimizer::step`], and copies them back if any became
    /// non-finite or the step failed. It cannot roll back the optimizer's own
    /// state. The built-in optimizers override it: they compute every
    /// new weight and state value first, without writing, and write only if all
    /// are finite, so a refused step leaves their momentum, moments and step
    /// count unchanged too, and `undo` is not used. An error (a setting out of
    /// range, state that does not fit `net`) leaves the parameters unchanged.
    fn step_if_finite<N: Params<T>>(
        &mut self,
        net: &mut N,
        grads: &N::Gradients,
        undo: &mut Vec<T>,
    ) -> Result<Option<NonFiniteUpdate>>
    where
        Self: Sized,
    {
        finite::save_params(&*net, undo);
        let result = self.step(net, grads).map(|()| finite::first_non_finite_param(&*net));
        if !matches!(result, Ok(None)) {
            finite::restore_params(net, undo);
        }
        result
    }
}

/// Per-parameter state vectors, created zeroed on first use.
///
/// A parameter the trainer freezes is visited with no values: its state is
/// then an empty vector (no memory) if it has none yet, and is kept as it is
/// otherwise; once unfrozen, an empty state starts from zeros.
#[derive(Clone, Debug, Default)]
struct Slots<T>(Vec<Vec<T>>);

impl<T: Float> Slots<T> {
    /// The state of parameter `index` with `len` scalars.
    fn get(&mut self, index: usize, len: usize, name: &ParamPath<'_>) -> Result<&mut [T]> {
        self.fill_missing(index, len, T::zero());
        match self.0.get_mut(index) {
            Some(slot) if slot.len() == len => Ok(slot),
            Some(slot) if len == 0 => Ok(&mut slot[..0]),
            _ => Err(misfit(name, len)),
        }
    }

    /// Creates the state of parameter `index` with `len` scalars, all `value`, if
    /// the next [`Slots::get`] would create it.
    fn fill_missing(&mut self, index: usize, len: usize, value: T) {
        if index == self.0.len() {
            self.0.push(vec![value; len]);
        } else if let Some(slot) = self.0.get_mut(index).filter(|s| s.is_empty() && len > 0) {
            *slot = vec![value; len];
        }
    }

    /// The state of parameter `index` with `len` scalars without creating it:
    /// `None` if the next [`Slots::get`], on parameters visited in order, would
    /// create it (zeros).
    fn peek(&self, index: usize, len: usize, name: &ParamPath<'_>) -> Result<Option<&[T]>> {
        match self.0.get(index) {
            None => Ok(None),
            Some(slot) if slot.len() == len => Ok(Some(slot)),
            Some(slot) if len == 0 => Ok(Some(&slot[..0])),
            Some(slot) if slot.is_empty() => Ok(None),
            Some(_) => Err(misfit(name, len)),
        }
    }
}

#[cold]
fn misfit(name: &ParamPath<'_>, len: usize) -> Error {
    Error::InvalidConfig(format!(
        "optimizer state does not fit parameter {name} ({len} values): \
         an optimizer must stay with the network it started on"
    ))
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

/// Checks a decay constant that must lie in [0, 1] (RMSprop's alpha, Adadelta's rho).
fn check_unit(what: &str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!("{what} must be in [0, 1], got {value}")))
    }
}

#[cold]
fn bad_rate(what: &str, value: f64) -> Error {
    Error::InvalidConfig(format!("{what} must be finite and non-negative, got {value}"))
}
