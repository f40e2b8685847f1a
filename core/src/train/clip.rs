//! Gradient clipping as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`
//! do it: on gradient slices, and for the trainer as a view of a network
//! ([`Clipped`]) whose optimizer sees clipped gradients.

use crate::float::Float;
use crate::init::SeededRng;
use crate::params::{Param, ParamMut, ParamPath, Params};

#[cfg(doc)]
use super::Trainer;

/// `g` clipped to `[-max, max]`; NaN stays NaN, as with `torch.clamp`.
fn clip_to<T: Float>(g: T, max: T) -> T {
    if g > max {
        max
    } else if g < -max {
        -max
    } else {
        g
    }
}

/// The factor `torch.nn.utils.clip_grad_norm_` scales gradients of global
/// norm `norm` by: `max_norm / (norm + 1e-6)`, at most 1. As in PyTorch, an
/// infinite norm gives 0 and a NaN norm gives NaN (every gradient becomes NaN).
pub(super) fn norm_scale(norm: f64, max_norm: f64) -> f64 {
    let scale = max_norm / (norm + 1e-6);
    if scale < 1.0 || scale.is_nan() {
        scale
    } else {
        1.0
    }
}

/// The global L2 norm of the gradients, after clipping their values to
/// `value` if given, accumulated in f64; gradients of parameters marked in `frozen` (by
/// visiting index) are left out, as PyTorch leaves out parameters without a gradient.
pub(super) fn clipped_norm<T: Float, N: Params<T>>(
    grads: &N::Gradients,
    value: Option<f64>,
    frozen: &[bool],
) -> f64 {
    let (mut sum, mut index) = (0.0, 0);
    N::visit_grads(grads, &mut |g| {
        let skip = frozen.get(index).copied().unwrap_or(false);
        index += 1;
        if skip {
            return;
        }
        sum += match value {
            Some(v) => {
                let v = T::cast(v);
                g.iter().map(|&x| clip_to(x, v).as_f64().powi(2)).sum::<f64>()
            }
            None => g.iter().map(|x| x.as_f64().powi(2)).sum::<f64>(),
        };
    });
    sum.sqrt()
}

/// The global L2 norm of gradient slices taken as one vector (accumulated in
/// f64), as `torch.nn.utils.clip_grad_norm_` computes it.
pub fn grad_norm<T: Float>(grads: &[&[T]]) -> f64 {
    grads.iter().flat_map(|g| g.iter()).map(|x| x.as_f64().powi(2)).sum::<f64>().sqrt()
}

/// Scales gradient slices in place so their global L2 norm is at most
/// `max_norm`, exactly as `torch.nn.utils.clip_grad_norm_` does (factor
/// `max_norm / (norm + 1e-6)` when below 1); returns the norm before clipping.
/// [`Trainer::clip_grad_norm`] applies the same rule to a network's gradients.
pub fn clip_grad_norm<T: Float>(grads: &mut [&mut [T]], max_norm: f64) -> f64 {
    let norm = grads.iter().flat_map(|g| g.iter()).map(|x| x.as_f64().powi(2)).sum::<f64>().sqrt();
    let scale = norm_scale(norm, max_norm);
    if scale < 1.0 || scale.is_nan() {
        let scale = T::cast(scale);
        grads.iter_mut().flat_map(|g| g.iter_mut()).for_each(|x| *x *= scale);
    }
    norm
}

/// Clips every element of the gradient slices to `[-max_value, max_value]` in
/// place, as `torch.nn.utils.clip_grad_value_` does. NaN stays NaN.
pub fn clip_grad_value<T: Float>(grads: &mut [&mut [T]], max_value: f64) {
    let max = T::cast(max_value);
    grads.iter_mut().flat_map(|g| g.iter_mut()).for_each(|x| *x = clip_to(*x, max));
}

/// A network seen by the optimizer with clipped gradients: every gradient the
/// optimizer visits is clipped to `value` (if given), then scaled by `scale`,
/// into `scratch`. The network's gradient structure itself is not changed
/// ([`Params`] visits gradients read-only), so this costs a copy of each
/// gradient slice, reusing one buffer.
pub(super) struct Clipped<'a, N, T> {
    pub(super) net: &'a mut N,
    pub(super) value: Option<f64>,
    pub(super) scale: f64,
    pub(super) scratch: &'a mut Vec<T>,
}

impl<T: Float, N: Params<T>> Params<T> for Clipped<'_, N, T> {
    type Gradients = N::Gradients;
    const PARAM_COUNT: usize = N::PARAM_COUNT;

    fn zero_gradients(&self) -> Self::Gradients {
        self.net.zero_gradients()
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.net.visit_params(path, f)
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.net.visit_params_mut(path, f)
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        let (value, scale, scratch) = (self.value.map(T::cast), T::cast(self.scale), &mut *self.scratch);
        self.net.visit_params_with_grads(grads, path, &mut |p, g| {
            scratch.clear();
            match value {
                Some(v) => scratch.extend(g.iter().map(|&x| clip_to(x, v) * scale)),
                None => scratch.extend(g.iter().map(|&x| x * scale)),
            }
            f(p, scratch)
        })
    }

    /// Unclipped: an associated function cannot see the clipping settings.
    /// Optimizers read gradients through [`Params::visit_params_with_grads`].
    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        N::visit_grads(grads, f)
    }

    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.net.visit_buffers(path, f)
    }

    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.net.visit_buffers_mut(path, f)
    }

    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        self.net.visit_rngs(path, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::layers::Dense;
    use crate::optim::{Optimizer, Sgd};

    #[test]
    fn clipping_slices_follows_pytorch() {
        let (mut a, mut b) = ([3.0f64, 0.0], [4.0f64]);
        let norm = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 1.0);
        assert_eq!(norm, 5.0);
        let scale = 1.0 / (5.0 + 1e-6);
        assert_eq!((a, b), ([3.0 * scale, 0.0], [4.0 * scale]));
        // Below the threshold nothing changes; the norm is still reported.
        let mut c = [0.3f32, -0.4];
        assert!((clip_grad_norm(&mut [&mut c[..]], 1.0) - 0.5).abs() < 1e-7);
        assert_eq!(c, [0.3, -0.4]);
        assert_eq!(grad_norm(&[&[3.0f64][..], &[4.0][..]]), 5.0);
        // An infinite norm zeroes the finite values, as torch does.
        let mut d = [f64::INFINITY, 2.0];
        clip_grad_norm(&mut [&mut d[..]], 1.0);
        assert!(d[0].is_nan() && d[1] == 0.0);

        let mut v = [-3.0f32, 0.5, 2.0, f32::NAN, f32::NEG_INFINITY];
        clip_grad_value(&mut [&mut v[..]], 1.0);
        assert_eq!(v[..3], [-1.0, 0.5, 1.0]);
        assert!(v[3].is_nan());
        assert_eq!(v[4], -1.0);
    }

    #[test]
    fn norm_scale_is_torchs_clip_coefficient() {
        assert_eq!(norm_scale(0.5, 1.0), 1.0);
        assert_eq!(norm_scale(4.0, 2.0), 2.0 / (4.0 + 1e-6));
        assert_eq!(norm_scale(f64::INFINITY, 2.0), 0.0);
        assert!(norm_scale(f64::NAN, 2.0).is_nan());
        assert_eq!(norm_scale(1e9, f64::INFINITY), 1.0);
    }

    /// One SGD step (lr 1) on a 2→1 dense layer with the given weight
    /// gradient, through the clipping view: the weight change is minus the clipped gradient.
    fn clipped_step(grad: [f64; 2], value: Option<f64>, max_norm: Option<f64>) -> Vec<f64> {
        let mut layer = Dense::<f64, 2, 1>::zeros(true);
        let mut grads = layer.zero_gradients();
        grads.weight.as_mut_slice().copy_from_slice(&grad);
        let scale = max_norm
            .map_or(1.0, |m| norm_scale(clipped_norm::<f64, Dense<f64, 2, 1>>(&grads, value, &[]), m));
        let mut scratch = Vec::new();
        let mut view = Clipped { net: &mut layer, value, scale, scratch: &mut scratch };
        let mut sgd = Sgd::new(1.0);
        sgd.step(&mut view, &grads).unwrap();
        assert_eq!(grads.weight.as_slice(), &grad, "the gradients themselves are untouched");
        let mut w = Vec::new();
        layer.visit_params(&ParamPath::ROOT, &mut |p| w.extend(p.value.iter().map(|v| -v)));
        w
    }

    #[test]
    fn the_optimizer_sees_clipped_gradients() {
        assert_eq!(clipped_step([3.0, 4.0], None, None), [3.0, 4.0, 0.0]);
        let s = 1.0 / (5.0 + 1e-6);
        assert_eq!(clipped_step([3.0, 4.0], None, Some(1.0)), [3.0 * s, 4.0 * s, 0.0]);
        assert_eq!(clipped_step([3.0, -4.0], Some(2.0), None), [2.0, -2.0, 0.0]);
        // Values first, then the norm of the clipped values (√8).
        let s = 1.0 / (8f64.sqrt() + 1e-6);
        let both = clipped_step([3.0, -4.0], Some(2.0), Some(1.0));
        assert_eq!(both, [2.0 * s, -2.0 * s, 0.0]);
    }
}
