//! A 1-D convolution's parameters under PyTorch's names and shapes.

use super::{Conv1d, Conv1dGrad};
use crate::float::Float;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{heap_clone, heap_zeros};
use std::fmt;

impl<T: Float, const C: usize> fmt::Debug for Conv1dGrad<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Conv1dGrad(weight: {}, out_channels = {C}, bias = {})",
            self.weight.len(),
            self.bias.is_some()
        )
    }
}

impl<T: Float, const C: usize> Clone for Conv1dGrad<T, C> {
    fn clone(&self) -> Self {
        Conv1dGrad { weight: self.weight.clone(), bias: self.bias.as_ref().map(heap_clone) }
    }
}

impl<T: Float, const STEPS: usize, const F: usize, const OSTEPS: usize, const C: usize, const K: usize>
    Params<T> for Conv1d<T, STEPS, F, OSTEPS, C, K>
{
    type Gradients = Conv1dGrad<T, C>;

    // A bias-less layer reports fewer; see `param_count`.
    const PARAM_COUNT: usize = C * F * K + C;

    fn zero_gradients(&self) -> Self::Gradients {
        Conv1dGrad {
            weight: vec![T::zero(); self.weight.len()],
            bias: self.bias.as_ref().map(|_| heap_zeros()),
        }
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        let shape = [C, F, K]; // PyTorch's [out, in, kernel]
        f(Param { name: path.join("weight"), shape: &shape, value: &self.weight });
        if let Some(b) = &self.bias {
            f(Param { name: path.join("bias"), shape: &[C], value: b.as_slice() });
        }
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        let shape = [C, F, K]; // PyTorch's [out, in, kernel]
        f(ParamMut { name: path.join("weight"), shape: &shape, value: &mut self.weight });
        if let Some(b) = &mut self.bias {
            f(ParamMut { name: path.join("bias"), shape: &[C], value: b.as_mut_slice() });
        }
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let shape = [C, F, K]; // PyTorch's [out, in, kernel]
        f(ParamMut { name: path.join("weight"), shape: &shape, value: &mut self.weight }, &grads.weight);
        if let (Some(b), Some(gb)) = (&mut self.bias, &grads.bias) {
            f(ParamMut { name: path.join("bias"), shape: &[C], value: b.as_mut_slice() }, gb.as_slice());
        }
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        f(&grads.weight);
        if let Some(gb) = &grads.bias {
            f(gb.as_slice());
        }
    }
}
