//! Parameters: how optimizers, persistence and summaries reach a network's tensors.
//!
//! Every parameter is visited as a flat slice in PyTorch's row-major layout
//! (a dense weight is `[out, in]`), under its `state_dict` name (`fc1.weight`).
//! Visiting never allocates, so an optimizer step stays allocation-free.

use crate::float::Float;
use crate::init::SeededRng;
use std::fmt;

/// A dotted parameter name (`encoder.fc1.weight`) as a chain of borrowed
/// segments, so naming a parameter costs no allocation. `Display` joins it.
#[derive(Clone, Copy)]
pub struct ParamPath<'a> {
    parent: Option<&'a ParamPath<'a>>,
    segment: &'a str,
}

impl ParamPath<'static> {
    /// The empty path every top-level network starts from.
    pub const ROOT: ParamPath<'static> = ParamPath { parent: None, segment: "" };
}

impl<'a> ParamPath<'a> {
    /// This path extended by one segment.
    pub fn join(&'a self, segment: &'a str) -> ParamPath<'a> {
        ParamPath { parent: Some(self), segment }
    }

    /// The last segment (`weight` in `fc1.weight`).
    pub fn last(&self) -> &'a str {
        self.segment
    }
}

impl ParamPath<'_> {
    /// Writes the path; returns whether anything was written, so the caller knows to add a dot.
    fn write_to(&self, f: &mut fmt::Formatter<'_>) -> Result<bool, fmt::Error> {
        let wrote = match self.parent {
            Some(parent) => parent.write_to(f)?,
            None => false,
        };
        if self.segment.is_empty() {
            return Ok(wrote);
        }
        if wrote {
            f.write_str(".")?;
        }
        f.write_str(self.segment)?;
        Ok(true)
    }
}

impl fmt::Display for ParamPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f).map(|_| ())
    }
}

impl fmt::Debug for ParamPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A parameter seen read-only.
pub struct Param<'a, T> {
    /// Its `state_dict` name.
    pub name: ParamPath<'a>,
    /// Its PyTorch shape, e.g. `[out, in]` for a dense weight.
    pub shape: &'a [usize],
    /// Its values, row-major over `shape`.
    pub value: &'a [T],
}

/// A parameter seen mutably.
pub struct ParamMut<'a, T> {
    /// Its `state_dict` name.
    pub name: ParamPath<'a>,
    /// Its PyTorch shape, e.g. `[out, in]` for a dense weight.
    pub shape: &'a [usize],
    /// Its values, row-major over `shape`.
    pub value: &'a mut [T],
}

/// Anything that owns trainable parameters: a layer or a whole network.
pub trait Params<T: Float> {
    /// The gradient of a loss with respect to every parameter, shaped like them.
    type Gradients: Send;

    /// How many scalars the parameters hold.
    const PARAM_COUNT: usize;

    /// The layers inside, as [`crate::network::LayerInfo::children`] lists them:
    /// a network's own `LAYERS` when it is used as a layer of another (one
    /// list); none for other layers.
    const SUBLAYERS: &'static [&'static [crate::network::LayerInfo]] = &[];

    /// A gradient structure filled with zeros.
    fn zero_gradients(&self) -> Self::Gradients;

    /// Calls `f` on every parameter, in a fixed order, named under `path`.
    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>));

    /// Calls `f` on every parameter mutably, in the same order.
    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>));

    /// Calls `f` on every parameter mutably together with its gradient, in the same order.
    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    );

    /// Calls `f` on every gradient, in the same order as the parameters.
    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T]));

    /// Calls `f` on every non-trainable buffer saved with the parameters
    /// (batch-norm running statistics), named like PyTorch's `state_dict`.
    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        let _ = (path, f);
    }

    /// Calls `f` on every buffer mutably, in the same order as [`Params::visit_buffers`].
    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        let _ = (path, f);
    }

    /// Calls `f` on the random generator of every layer that has one (dropout),
    /// named like its layer, so checkpoints can save and restore it.
    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        let _ = (path, f);
    }

    /// Calls `f` on the weight of every dense and conv2d layer with its slot for a
    /// compact copy ([`crate::quant`]), in visiting order; the default visits none.
    #[doc(hidden)]
    fn visit_compact(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(crate::quant::CompactSlot<'_, T>)) {
        let _ = (path, f);
    }
}

/// Implements [`Params`] for a one-field wrapper `Wrapper<Inner>` by handing
/// every call to the field (`self.0`): its parameters are the inner ones, under
/// the same path (`layers::Projection`).
macro_rules! params_of_inner {
    ($(#[$doc:meta])* $wrapper:ident<$inner:ident>) => {
        $(#[$doc])*
        impl<T: $crate::float::Float, $inner: $crate::params::Params<T>> $crate::params::Params<T> for $wrapper<$inner> {
            type Gradients = $inner::Gradients;
            const PARAM_COUNT: usize = $inner::PARAM_COUNT;
            const SUBLAYERS: &'static [&'static [$crate::network::LayerInfo]] = $inner::SUBLAYERS;

            fn zero_gradients(&self) -> $inner::Gradients {
                self.0.zero_gradients()
            }
            fn visit_params(&self, path: &$crate::params::ParamPath<'_>, f: &mut dyn FnMut($crate::params::Param<'_, T>)) {
                self.0.visit_params(path, f)
            }
            fn visit_params_mut(&mut self, path: &$crate::params::ParamPath<'_>, f: &mut dyn FnMut($crate::params::ParamMut<'_, T>)) {
                self.0.visit_params_mut(path, f)
            }
            fn visit_params_with_grads(
                &mut self,
                grads: &$inner::Gradients,
                path: &$crate::params::ParamPath<'_>,
                f: &mut dyn FnMut($crate::params::ParamMut<'_, T>, &[T]),
            ) {
                self.0.visit_params_with_grads(grads, path, f)
            }
            fn visit_grads(grads: &$inner::Gradients, f: &mut dyn FnMut(&[T])) {
                $inner::visit_grads(grads, f)
            }
            fn visit_buffers(&self, path: &$crate::params::ParamPath<'_>, f: &mut dyn FnMut($crate::params::Param<'_, T>)) {
                self.0.visit_buffers(path, f)
            }
            fn visit_buffers_mut(&mut self, path: &$crate::params::ParamPath<'_>, f: &mut dyn FnMut($crate::params::ParamMut<'_, T>)) {
                self.0.visit_buffers_mut(path, f)
            }
            fn visit_rngs(&mut self, path: &$crate::params::ParamPath<'_>, f: &mut dyn FnMut($crate::params::ParamPath<'_>, &mut $crate::init::SeededRng)) {
                self.0.visit_rngs(path, f)
            }
            fn visit_compact(&mut self, path: &$crate::params::ParamPath<'_>, f: &mut dyn FnMut($crate::quant::CompactSlot<'_, T>)) {
                self.0.visit_compact(path, f)
            }
        }
    };
}
pub(crate) use params_of_inner;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_with_dots_and_skip_the_root() {
        let root = ParamPath::ROOT;
        let enc = root.join("encoder");
        let fc = enc.join("fc1");
        assert_eq!(fc.join("weight").to_string(), "encoder.fc1.weight");
        assert_eq!(root.join("0").join("bias").to_string(), "0.bias");
        assert_eq!(root.to_string(), "");
        assert_eq!(fc.join("weight").last(), "weight");
    }
}
