//! Freezing parameters by name ([`Trainer::freeze`]) and the optimizer step that honours it
//! and gradient clipping.
//!
//! The optimizer steps through a view of the network ([`Frozen`]) that shows a frozen
//! parameter with no values and no gradient, at its usual visiting index: the built-in
//! optimizers then neither change it nor create state for it (an empty vector), and state it
//! already has is kept for when it is unfrozen, as in PyTorch with `requires_grad = False`.

use super::clip::{clipped_norm, norm_scale, Clipped};
use super::Trainer;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::SeededRng;
use crate::optim::{NonFiniteUpdate, Optimizer, OptimizerState};
use crate::params::{Param, ParamMut, ParamPath, Params};

impl<O> Trainer<O> {
    /// Freezes the parameters named `prefix` or under it (`"backbone"` freezes
    /// `backbone.fc1.weight`, not `backbone2.weight`; a full name freezes one parameter):
    /// the optimizer leaves them bit for bit as they are and creates no state for them.
    /// Gradients still flow through them to earlier layers, and batch-norm statistics
    /// (buffers, not parameters) still update in training. Applies from the next
    /// [`Trainer::fit`], which fails ([`Error::InvalidConfig`]) if no parameter matches.
    ///
    /// ```
    /// use staticnet::prelude::*;
    /// network! { struct Net { input: [4], backbone: dense(8), relu, head: dense(3) } }
    /// let mut trainer = Trainer::new(Adam::<f32>::new(1e-3));
    /// trainer.freeze("backbone"); // fine-tune the head only
    /// # let _ = Net::<f32>::new(0);
    /// ```
    pub fn freeze(&mut self, prefix: impl Into<String>) -> &mut Self {
        let prefix = prefix.into();
        if !self.frozen.contains(&prefix) {
            self.frozen.push(prefix);
        }
        self
    }

    /// Unfreezes what [`Trainer::freeze`] froze with `prefix` or a prefix under it.
    pub fn unfreeze(&mut self, prefix: &str) -> &mut Self {
        self.frozen.retain(|f| !crate::optim::under(f, prefix));
        self
    }

    /// Unfreezes every parameter.
    pub fn unfreeze_all(&mut self) -> &mut Self {
        self.frozen.clear();
        self
    }

    /// The prefixes frozen by [`Trainer::freeze`].
    pub fn frozen(&self) -> &[String] {
        &self.frozen
    }

    /// Which parameters (by visiting index) are frozen, or an error naming a prefix that
    /// matches none. Empty when nothing is frozen.
    pub(super) fn frozen_mask<T: Float, N: Params<T>>(&self, net: &N) -> Result<Vec<bool>> {
        if self.frozen.is_empty() {
            return Ok(Vec::new());
        }
        let (mut mask, mut used) = (Vec::new(), vec![false; self.frozen.len()]);
        net.visit_params(&ParamPath::ROOT, &mut |p| {
            let name = p.name.to_string();
            let hits = self.frozen.iter().map(|f| crate::optim::under(&name, f));
            let mut frozen = false;
            for (used, hit) in used.iter_mut().zip(hits) {
                *used |= hit;
                frozen |= hit;
            }
            mask.push(frozen);
        });
        match used.iter().position(|u| !u) {
            None => Ok(mask),
            Some(k) => Err(Error::InvalidConfig(format!(
                "freeze(\"{}\"): no parameter is named `{0}` or starts with `{0}.`",
                self.frozen[k]
            ))),
        }
    }
}

/// One optimizer step of `optimizer` on `net` with `grads`, clipped by value and global norm
/// as set, skipping the parameters `mask` freezes (empty: none).
#[allow(clippy::too_many_arguments)]
pub(super) fn step<T, N, O>(
    optimizer: &mut O,
    net: &mut N,
    grads: &N::Gradients,
    clip_value: Option<f64>,
    clip_norm: Option<f64>,
    mask: &[bool],
    scratch: &mut Vec<T>,
    undo: &mut Vec<T>,
) -> Result<Option<NonFiniteUpdate>>
where
    T: Float,
    N: Params<T>,
    O: Optimizer<T>,
{
    let clipping = clip_value.is_some() || clip_norm.is_some();
    match (clipping, mask.iter().any(|f| *f)) {
        (false, false) => optimizer.step_if_finite(net, grads, undo),
        (false, true) => optimizer.step_if_finite(&mut Frozen { inner: net, mask }, grads, undo),
        (true, frozen) => {
            let scale = match clip_norm {
                Some(max) => norm_scale(clipped_norm::<T, N>(grads, clip_value, mask), max),
                None => 1.0,
            };
            let mut clipped = Clipped { net, value: clip_value, scale, scratch };
            if frozen {
                optimizer.step_if_finite(&mut Frozen { inner: &mut clipped, mask }, grads, undo)
            } else {
                optimizer.step_if_finite(&mut clipped, grads, undo)
            }
        }
    }
}

/// Pads the state vectors of parameters that never had any (frozen from the start) with
/// zeros, as a checkpoint stores every parameter's state.
pub(super) fn pad_state<T: Float, N: Params<T>>(state: &mut OptimizerState<T>, net: &N) {
    let mut lens = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| lens.push(p.value.len()));
    for (_, vectors) in &mut state.slots {
        for (v, &len) in vectors.iter_mut().zip(&lens) {
            if v.is_empty() && len > 0 {
                *v = vec![T::zero(); len];
            }
        }
    }
}

/// A network whose parameters marked in `mask` (by visiting index) the optimizer sees with
/// no values and no gradient; every other visit passes through.
pub(super) struct Frozen<'a, N> {
    pub(super) inner: &'a mut N,
    pub(super) mask: &'a [bool],
}

impl<T: Float, N: Params<T>> Params<T> for Frozen<'_, N> {
    type Gradients = N::Gradients;
    const PARAM_COUNT: usize = N::PARAM_COUNT;

    fn zero_gradients(&self) -> Self::Gradients {
        self.inner.zero_gradients()
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.inner.visit_params(path, f)
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.inner.visit_params_mut(path, f)
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let (mask, mut index) = (self.mask, 0);
        self.inner.visit_params_with_grads(grads, path, &mut |p, g| {
            if mask.get(index).copied().unwrap_or(false) {
                f(ParamMut { name: p.name, shape: &[0], value: &mut [] }, &[]);
            } else {
                f(p, g);
            }
            index += 1;
        })
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        N::visit_grads(grads, f)
    }

    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.inner.visit_buffers(path, f)
    }

    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.inner.visit_buffers_mut(path, f)
    }

    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        self.inner.visit_rngs(path, f)
    }
}
