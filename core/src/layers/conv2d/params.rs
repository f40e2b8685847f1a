//! A convolution's parameters under PyTorch's names and shapes.

use super::{Conv2d, Conv2dGrad};
use crate::float::Float;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::heap_zeros;
use std::fmt;

impl<T: Float, const PATCH: usize, const COUT: usize> fmt::Debug for Conv2dGrad<T, PATCH, COUT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conv2dGrad(patch = {PATCH}, out_channels = {COUT}, bias = {})", self.bias.is_some())
    }
}

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>
    Conv2d<T, IN, OUT, PATCH, COUT>
{
    /// PyTorch's weight shape `[COUT, CIN, kh, kw]`.
    fn weight_shape(&self) -> [usize; 4] {
        let g = &self.geometry;
        [COUT, g.in_channels, g.kernel[0], g.kernel[1]]
    }
}

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize> Params<T>
    for Conv2d<T, IN, OUT, PATCH, COUT>
{
    type Gradients = Conv2dGrad<T, PATCH, COUT>;

    // A bias-less layer reports fewer; see `param_count`.
    const PARAM_COUNT: usize = PATCH * COUT + COUT;

    fn zero_gradients(&self) -> Self::Gradients {
        Conv2dGrad { weight: heap_zeros(), bias: self.bias.as_ref().map(|_| heap_zeros()) }
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        let shape = self.weight_shape();
        f(Param { name: path.join("weight"), shape: &shape, value: self.weight.as_slice() });
        if let Some(b) = &self.bias {
            f(Param { name: path.join("bias"), shape: &[COUT], value: b.as_slice() });
        }
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        let shape = self.weight_shape();
        f(ParamMut { name: path.join("weight"), shape: &shape, value: self.weight.as_mut_slice() });
        if let Some(b) = &mut self.bias {
            f(ParamMut { name: path.join("bias"), shape: &[COUT], value: b.as_mut_slice() });
        }
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let shape = self.weight_shape();
        let w = ParamMut { name: path.join("weight"), shape: &shape, value: self.weight.as_mut_slice() };
        f(w, grads.weight.as_slice());
        if let (Some(b), Some(gb)) = (&mut self.bias, &grads.bias) {
            f(ParamMut { name: path.join("bias"), shape: &[COUT], value: b.as_mut_slice() }, gb.as_slice());
        }
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        f(grads.weight.as_slice());
        if let Some(gb) = &grads.bias {
            f(gb.as_slice());
        }
    }

    fn visit_compact(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(crate::quant::CompactSlot<'_, T>)) {
        let shape = self.weight_shape();
        f(crate::quant::CompactSlot::new(path.join("weight"), &shape, &mut self.weight));
    }
}
