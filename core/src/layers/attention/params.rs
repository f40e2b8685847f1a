//! An attention layer's parameters under PyTorch's names and shapes, and the
//! by-hand `Clone`/`Debug` of the layer and its gradients.

use super::{Attention, AttentionGrad, AttentionWorkspace};
use crate::float::Float;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{heap_clone, heap_zeros};
use nalgebra::{DMatrix, DVector};
use std::fmt;

impl<T: Float, const STEPS: usize, const D: usize, const HEADS: usize> Params<T>
    for Attention<T, STEPS, D, HEADS>
{
    type Gradients = AttentionGrad<T, D>;

    const PARAM_COUNT: usize = 4 * D * D + 4 * D;

    fn zero_gradients(&self) -> Self::Gradients {
        AttentionGrad {
            in_proj_weight: DMatrix::zeros(D, 3 * D),
            in_proj_bias: DVector::zeros(3 * D),
            out_proj_weight: heap_zeros(),
            out_proj_bias: heap_zeros(),
        }
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        let (in_w, in_b) = ([3 * D, D], [3 * D]);
        f(Param { name: path.join("in_proj_weight"), shape: &in_w, value: self.in_proj_weight.as_slice() });
        f(Param { name: path.join("in_proj_bias"), shape: &in_b, value: self.in_proj_bias.as_slice() });
        let out = path.join("out_proj");
        f(Param { name: out.join("weight"), shape: &[D, D], value: self.out_proj_weight.as_slice() });
        f(Param { name: out.join("bias"), shape: &[D], value: self.out_proj_bias.as_slice() });
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        let (in_w, in_b) = ([3 * D, D], [3 * D]);
        let w = self.in_proj_weight.as_mut_slice();
        f(ParamMut { name: path.join("in_proj_weight"), shape: &in_w, value: w });
        f(ParamMut {
            name: path.join("in_proj_bias"),
            shape: &in_b,
            value: self.in_proj_bias.as_mut_slice(),
        });
        let out = path.join("out_proj");
        f(ParamMut { name: out.join("weight"), shape: &[D, D], value: self.out_proj_weight.as_mut_slice() });
        f(ParamMut { name: out.join("bias"), shape: &[D], value: self.out_proj_bias.as_mut_slice() });
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let (in_w, in_b) = ([3 * D, D], [3 * D]);
        let w = self.in_proj_weight.as_mut_slice();
        f(
            ParamMut { name: path.join("in_proj_weight"), shape: &in_w, value: w },
            grads.in_proj_weight.as_slice(),
        );
        let b = self.in_proj_bias.as_mut_slice();
        f(
            ParamMut { name: path.join("in_proj_bias"), shape: &in_b, value: b },
            grads.in_proj_bias.as_slice(),
        );
        let out = path.join("out_proj");
        let w = self.out_proj_weight.as_mut_slice();
        f(ParamMut { name: out.join("weight"), shape: &[D, D], value: w }, grads.out_proj_weight.as_slice());
        let b = self.out_proj_bias.as_mut_slice();
        f(ParamMut { name: out.join("bias"), shape: &[D], value: b }, grads.out_proj_bias.as_slice());
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        f(grads.in_proj_weight.as_slice());
        f(grads.in_proj_bias.as_slice());
        f(grads.out_proj_weight.as_slice());
        f(grads.out_proj_bias.as_slice());
    }
}

impl<T: Float, const STEPS: usize, const D: usize, const HEADS: usize> Clone
    for Attention<T, STEPS, D, HEADS>
{
    fn clone(&self) -> Self {
        // Deriving would copy the `D×D` matrices through the stack.
        Attention {
            in_proj_weight: self.in_proj_weight.clone(),
            in_proj_bias: self.in_proj_bias.clone(),
            out_proj_weight: heap_clone(&self.out_proj_weight),
            out_proj_bias: heap_clone(&self.out_proj_bias),
            causal: self.causal,
        }
    }
}

impl<T: Float, const STEPS: usize, const D: usize, const HEADS: usize> fmt::Debug
    for Attention<T, STEPS, D, HEADS>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Attention([{STEPS}, {D}], heads = {HEADS}, causal = {})", self.causal)
    }
}

impl<T: Float, const D: usize> Clone for AttentionGrad<T, D> {
    fn clone(&self) -> Self {
        AttentionGrad {
            in_proj_weight: self.in_proj_weight.clone(),
            in_proj_bias: self.in_proj_bias.clone(),
            out_proj_weight: heap_clone(&self.out_proj_weight),
            out_proj_bias: heap_clone(&self.out_proj_bias),
        }
    }
}

impl<T: Float, const D: usize> fmt::Debug for AttentionGrad<T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttentionGrad({D} features)")
    }
}

impl<T: Float> fmt::Debug for AttentionWorkspace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttentionWorkspace({} values)", self.qkv.len() + self.probs.len() + self.ctx.len())
    }
}
