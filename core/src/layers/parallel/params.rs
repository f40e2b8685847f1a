//! The parameters of a [`Branch`](super::Branch) list, each branch's under
//! its position (`0`, `1`, …), in branch order.

use super::Branch;
use crate::float::Float;
use crate::init::SeededRng;
use crate::params::{Param, ParamMut, ParamPath, Params};

/// The parameters of a list of branches, each named by its position from `index`.
pub trait BranchParams<T: Float> {
    /// Every branch's parameter gradients.
    type Gradients: Send;
    /// The trainable scalars of every branch.
    const PARAM_COUNT: usize;

    /// Zero gradients for every branch.
    fn zero_gradients(&self) -> Self::Gradients;
    /// [`Params::visit_params`] over the branches, each under its position from `index`.
    fn visit_params(&self, index: usize, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>));
    /// [`Params::visit_params_mut`] over the branches.
    fn visit_params_mut(&mut self, index: usize, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>));
    /// [`Params::visit_params_with_grads`] over the branches.
    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        index: usize,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    );
    /// [`Params::visit_grads`] over the branches.
    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T]));
    /// [`Params::visit_buffers`] over the branches.
    fn visit_buffers(&self, index: usize, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>));
    /// [`Params::visit_buffers_mut`] over the branches.
    fn visit_buffers_mut(&mut self, index: usize, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>));
    /// [`Params::visit_rngs`] over the branches.
    fn visit_rngs(
        &mut self,
        index: usize,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng),
    );
    /// [`Params::visit_compact`] over the branches.
    fn visit_compact(
        &mut self,
        index: usize,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(crate::quant::CompactSlot<'_, T>),
    );
}

/// The end of a branch list.
impl<T: Float> BranchParams<T> for () {
    type Gradients = ();
    const PARAM_COUNT: usize = 0;

    fn zero_gradients(&self) {}
    fn visit_params(&self, _: usize, _: &ParamPath<'_>, _: &mut dyn FnMut(Param<'_, T>)) {}
    fn visit_params_mut(&mut self, _: usize, _: &ParamPath<'_>, _: &mut dyn FnMut(ParamMut<'_, T>)) {}
    fn visit_params_with_grads(
        &mut self,
        _: &(),
        _: usize,
        _: &ParamPath<'_>,
        _: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
    }
    fn visit_grads(_: &(), _: &mut dyn FnMut(&[T])) {}
    fn visit_buffers(&self, _: usize, _: &ParamPath<'_>, _: &mut dyn FnMut(Param<'_, T>)) {}
    fn visit_buffers_mut(&mut self, _: usize, _: &ParamPath<'_>, _: &mut dyn FnMut(ParamMut<'_, T>)) {}
    fn visit_rngs(&mut self, _: usize, _: &ParamPath<'_>, _: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {}
    fn visit_compact(
        &mut self,
        _: usize,
        _: &ParamPath<'_>,
        _: &mut dyn FnMut(crate::quant::CompactSlot<'_, T>),
    ) {
    }
}

/// A branch's gradients, then the gradients of the branches after it.
pub struct BranchGrad<G, R> {
    /// This branch's.
    pub net: G,
    /// The later branches'.
    pub rest: R,
}

/// `index` in decimal, in `buf`: a branch's segment in parameter names, without allocating.
fn label(index: usize, buf: &mut [u8; 20]) -> &str {
    let (mut n, mut start) = (index, buf.len());
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[start..]).unwrap_or_default()
}

impl<T: Float, N: Params<T>, R: BranchParams<T>, const K: usize> BranchParams<T> for Branch<N, K, R> {
    type Gradients = BranchGrad<N::Gradients, R::Gradients>;
    const PARAM_COUNT: usize = N::PARAM_COUNT.saturating_add(R::PARAM_COUNT);

    fn zero_gradients(&self) -> Self::Gradients {
        BranchGrad { net: self.net.zero_gradients(), rest: self.rest.zero_gradients() }
    }

    fn visit_params(&self, index: usize, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.net.visit_params(&path.join(label(index, &mut [0; 20])), f);
        self.rest.visit_params(index + 1, path, f);
    }

    fn visit_params_mut(&mut self, index: usize, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.net.visit_params_mut(&path.join(label(index, &mut [0; 20])), f);
        self.rest.visit_params_mut(index + 1, path, f);
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        index: usize,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        self.net.visit_params_with_grads(&grads.net, &path.join(label(index, &mut [0; 20])), f);
        self.rest.visit_params_with_grads(&grads.rest, index + 1, path, f);
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        N::visit_grads(&grads.net, f);
        R::visit_grads(&grads.rest, f);
    }

    fn visit_buffers(&self, index: usize, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.net.visit_buffers(&path.join(label(index, &mut [0; 20])), f);
        self.rest.visit_buffers(index + 1, path, f);
    }

    fn visit_buffers_mut(&mut self, index: usize, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.net.visit_buffers_mut(&path.join(label(index, &mut [0; 20])), f);
        self.rest.visit_buffers_mut(index + 1, path, f);
    }

    fn visit_rngs(
        &mut self,
        index: usize,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng),
    ) {
        self.net.visit_rngs(&path.join(label(index, &mut [0; 20])), f);
        self.rest.visit_rngs(index + 1, path, f);
    }
    fn visit_compact(
        &mut self,
        index: usize,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(crate::quant::CompactSlot<'_, T>),
    ) {
        self.net.visit_compact(&path.join(label(index, &mut [0; 20])), f);
        self.rest.visit_compact(index + 1, path, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_decimal_positions() {
        let mut buf = [0; 20];
        assert_eq!(label(0, &mut buf), "0");
        assert_eq!(label(7, &mut buf), "7");
        assert_eq!(label(12, &mut buf), "12");
        assert_eq!(label(usize::MAX, &mut buf), usize::MAX.to_string());
    }
}
