//! Parallel branches (`parallel(concat | add) { branch { .. } .. }` in
//! `network!`): networks over the same input whose outputs are joined, by
//! concatenation along channels or features, or by an element-wise sum.

mod branches;
mod params;

pub use branches::{BranchWorkspace, Branches};
pub use params::{BranchGrad, BranchParams};

use super::{same_size, Layer};
use crate::float::Float;
use crate::init::SeededRng;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::{ensure_batch, Batch};
use std::fmt;

/// Branches over the same input, joined by `J` ([`Concat`] or [`Add`]).
///
/// The branches are a list, `Branch<A, 4, Branch<B, 2, ()>>`: each cell holds
/// one branch network with its output size and the branches after it. A list
/// rather than one type per number of branches, because stable Rust has no
/// variadic generics; rather than nested pairs `Parallel<A, Parallel<B, C>>`,
/// because a list lets every branch write straight into its rows of the one
/// output and add its input gradient to the one `dx` in branch order, as
/// before, where an inner pair would need an output of its own to copy from
/// and would add `d1 + d2` before `d0`, changing the bits of the sum.
///
/// Parameters are named by branch position under the layer's name
/// (`par.0.…`, `par.1.0.weight`), in branch order.
#[derive(Clone)]
pub struct Parallel<J, L> {
    /// How the branch outputs are joined.
    pub join: J,
    /// The branches: a [`Branch`] list ending in `()`.
    pub branches: L,
}

/// One branch network `N` giving `K` values per sample, then the branches after it.
#[derive(Clone)]
pub struct Branch<N, const K: usize, R> {
    /// The branch's layers.
    pub net: N,
    /// The branches after this one, or `()`.
    pub rest: R,
}

/// Joins branch outputs one after another along channels (rank 3) or
/// features (rank 1), in branch order: the sizes add up to the layer's output.
#[derive(Clone, Copy, Debug, Default)]
pub struct Concat;

/// Joins branch outputs by an element-wise sum: every branch gives the layer's output size.
#[derive(Clone, Copy, Debug, Default)]
pub struct Add;

/// How a [`Parallel`] layer joins its branches.
pub trait Join: Copy + Send + 'static {
    /// `parallel(concat)` or `parallel(add)`, as in `network!`.
    const NAME: &'static str;

    /// Whether the branches' sizes add up to the output's (else each is the output's).
    const CONCAT: bool;

    /// Puts branch `index`'s output (starting at row `row` of the join) into `y`.
    fn join<T: Float, const K: usize, const O: usize>(
        y: &mut Batch<T, O>,
        out: &Batch<T, K>,
        index: usize,
        row: usize,
    );

    /// Branch `index`'s part of the output gradient `dy`, copied into `part` if need be.
    fn part<'a, T: Float, const O: usize, const K: usize>(
        dy: &'a Batch<T, O>,
        row: usize,
        part: &'a mut Batch<T, K>,
    ) -> &'a Batch<T, K>;
}

impl Join for Concat {
    const NAME: &'static str = "parallel(concat)";

    const CONCAT: bool = true;

    fn join<T: Float, const K: usize, const O: usize>(
        y: &mut Batch<T, O>,
        out: &Batch<T, K>,
        _: usize,
        row: usize,
    ) {
        y.rows_mut(row, K).copy_from(out);
    }

    fn part<'a, T: Float, const O: usize, const K: usize>(
        dy: &'a Batch<T, O>,
        row: usize,
        part: &'a mut Batch<T, K>,
    ) -> &'a Batch<T, K> {
        ensure_batch(part, dy.ncols());
        part.copy_from(&dy.rows(row, K));
        part
    }
}

impl Join for Add {
    const NAME: &'static str = "parallel(add)";

    const CONCAT: bool = false;

    fn join<T: Float, const K: usize, const O: usize>(
        y: &mut Batch<T, O>,
        out: &Batch<T, K>,
        index: usize,
        _: usize,
    ) {
        // K == O, which `Parallel`'s size check guarantees.
        let out = same_size::<T, K, O>(out);
        if index == 0 {
            y.copy_from(out);
        } else {
            *y += out;
        }
    }

    fn part<'a, T: Float, const O: usize, const K: usize>(
        dy: &'a Batch<T, O>,
        _: usize,
        _: &'a mut Batch<T, K>,
    ) -> &'a Batch<T, K> {
        same_size(dy)
    }
}

/// What a [`Parallel`] layer keeps for its backward pass: the branches'
/// workspaces and one input gradient that later branches write before it is added.
pub struct ParallelWorkspace<T: Float, W, const I: usize> {
    branches: W,
    dx: Batch<T, I>,
}

impl<T: Float, W: Default, const I: usize> Default for ParallelWorkspace<T, W, I> {
    fn default() -> Self {
        ParallelWorkspace { branches: W::default(), dx: Batch::zeros(0) }
    }
}

/// Fails to compile a `Parallel` whose branches do not give its `O` values:
/// their sum for a concatenation, each of them for a sum. `network!` never
/// writes one; this guards hand-written uses.
fn sizes_fit<T: Float, J: Join, L: Branches<T, I>, const I: usize, const O: usize>() {
    const {
        let fits = if J::CONCAT { L::SUM == O } else { L::MIN == O && L::MAX == O };
        assert!(fits, "the branches of a Parallel layer do not give its output size");
    }
}

impl<T, J, L, const I: usize, const O: usize> Layer<T, I, O> for Parallel<J, L>
where
    T: Float,
    J: Join,
    L: Branches<T, I>,
{
    type Workspace = ParallelWorkspace<T, L::Workspace, I>;
    type Gradients = L::Gradients;

    fn forward(&self, x: &Batch<T, I>, y: &mut Batch<T, O>) {
        sizes_fit::<T, J, L, I, O>();
        ensure_batch(y, x.ncols());
        self.branches.forward::<J, O>(x, y, 0, 0);
    }

    fn forward_with(&self, x: &Batch<T, I>, y: &mut Batch<T, O>, ws: &mut Self::Workspace) {
        sizes_fit::<T, J, L, I, O>();
        ensure_batch(y, x.ncols());
        self.branches.forward_with::<J, O>(x, y, &mut ws.branches, 0, 0);
    }

    fn forward_train(&mut self, x: &Batch<T, I>, y: &mut Batch<T, O>, ws: &mut Self::Workspace) {
        sizes_fit::<T, J, L, I, O>();
        ensure_batch(y, x.ncols());
        self.branches.forward_train::<J, O>(x, y, &mut ws.branches, 0, 0);
    }

    fn backward(
        &self,
        x: &Batch<T, I>,
        _y: &Batch<T, O>,
        dy: &Batch<T, O>,
        ws: &mut Self::Workspace,
        g: &mut Self::Gradients,
        dx: Option<&mut Batch<T, I>>,
    ) {
        self.branches.backward::<J, O>(x, dy, &mut ws.branches, g, dx, &mut ws.dx, 0, 0);
    }
}

/// Each branch's parameters under its position: `0.…`, `1.…`.
impl<T: Float, J, L: BranchParams<T>> Params<T> for Parallel<J, L> {
    type Gradients = L::Gradients;
    const PARAM_COUNT: usize = L::PARAM_COUNT;

    fn zero_gradients(&self) -> L::Gradients {
        self.branches.zero_gradients()
    }
    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.branches.visit_params(0, path, f)
    }
    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.branches.visit_params_mut(0, path, f)
    }
    fn visit_params_with_grads(
        &mut self,
        grads: &L::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        self.branches.visit_params_with_grads(grads, 0, path, f)
    }
    fn visit_grads(grads: &L::Gradients, f: &mut dyn FnMut(&[T])) {
        L::visit_grads(grads, f)
    }
    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.branches.visit_buffers(0, path, f)
    }
    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.branches.visit_buffers_mut(0, path, f)
    }
    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        self.branches.visit_rngs(0, path, f)
    }
    fn visit_compact(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(crate::quant::CompactSlot<'_, T>)) {
        self.branches.visit_compact(0, path, f)
    }
}

/// How the layer reads in a network's `Debug`: `parallel(concat)` or `parallel(add)`.
impl<J: Join, L> fmt::Debug for Parallel<J, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(J::NAME)
    }
}
