//! Parallel branches (`parallel(concat | add) { branch { .. } .. }` in
//! `network!`): networks over the same input whose outputs are joined, by
//! concatenation along channels or features, or by an element-wise sum.

use super::{same_size, Layer};
use crate::float::Float;
use crate::init::SeededRng;
use crate::network::Network;
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

/// A list of branches over inputs of `I` values: what [`Parallel`] runs one
/// after another. `index` is a branch's position, `row` where its output starts
/// in a concatenation.
pub trait Branches<T: Float, const I: usize>: BranchParams<T> {
    /// Every branch's trace, and its part of the output gradient.
    type Workspace: Default + Send;
    /// The branches' output sizes: their sum, smallest and largest.
    const SUM: usize;
    /// The smallest output size (`usize::MAX` for no branches).
    const MIN: usize;
    /// The largest output size (0 for no branches).
    const MAX: usize;

    /// Runs each branch on `x` (inference) and joins its output into `y`.
    fn forward<J: Join, const O: usize>(
        &self,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        index: usize,
        row: usize,
    );

    /// [`Branches::forward`] into the branches' traces.
    fn forward_with<J: Join, const O: usize>(
        &self,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        ws: &mut Self::Workspace,
        index: usize,
        row: usize,
    );

    /// Runs each branch on `x` (training) and joins its output into `y`.
    fn forward_train<J: Join, const O: usize>(
        &mut self,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        ws: &mut Self::Workspace,
        index: usize,
        row: usize,
    );

    /// Each branch's backward pass from its part of `dy`. The first branch
    /// writes the input gradient into `dx`; each later one writes it into
    /// `scratch`, which is then added to `dx`.
    #[allow(clippy::too_many_arguments)]
    fn backward<J: Join, const O: usize>(
        &self,
        x: &Batch<T, I>,
        dy: &Batch<T, O>,
        ws: &mut Self::Workspace,
        g: &mut Self::Gradients,
        dx: Option<&mut Batch<T, I>>,
        scratch: &mut Batch<T, I>,
        index: usize,
        row: usize,
    );
}

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
}

/// The end of a branch list.
impl<T: Float, const I: usize> Branches<T, I> for () {
    type Workspace = ();
    const SUM: usize = 0;
    const MIN: usize = usize::MAX;
    const MAX: usize = 0;

    fn forward<J: Join, const O: usize>(&self, _: &Batch<T, I>, _: &mut Batch<T, O>, _: usize, _: usize) {}
    fn forward_with<J: Join, const O: usize>(
        &self,
        _: &Batch<T, I>,
        _: &mut Batch<T, O>,
        _: &mut (),
        _: usize,
        _: usize,
    ) {
    }
    fn forward_train<J: Join, const O: usize>(
        &mut self,
        _: &Batch<T, I>,
        _: &mut Batch<T, O>,
        _: &mut (),
        _: usize,
        _: usize,
    ) {
    }
    fn backward<J: Join, const O: usize>(
        &self,
        _: &Batch<T, I>,
        _: &Batch<T, O>,
        _: &mut (),
        _: &mut (),
        _: Option<&mut Batch<T, I>>,
        _: &mut Batch<T, I>,
        _: usize,
        _: usize,
    ) {
    }
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
}

/// A branch's trace and, for a concatenation, its part of the output gradient.
pub struct BranchWorkspace<T: Float, Tr, R, const K: usize> {
    trace: Tr,
    dy: Batch<T, K>,
    rest: R,
}

impl<T: Float, Tr: Default, R: Default, const K: usize> Default for BranchWorkspace<T, Tr, R, K> {
    fn default() -> Self {
        BranchWorkspace { trace: Tr::default(), dy: Batch::zeros(0), rest: R::default() }
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

impl<T, N, R, const I: usize, const K: usize> Branches<T, I> for Branch<N, K, R>
where
    T: Float,
    N: Network<T, I, K>,
    R: Branches<T, I>,
{
    type Workspace = BranchWorkspace<T, N::Trace, R::Workspace, K>;
    const SUM: usize = K.saturating_add(R::SUM);
    const MIN: usize = if K < R::MIN { K } else { R::MIN };
    const MAX: usize = if K > R::MAX { K } else { R::MAX };

    fn forward<J: Join, const O: usize>(
        &self,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        index: usize,
        row: usize,
    ) {
        J::join(y, &self.net.forward(x), index, row);
        self.rest.forward::<J, O>(x, y, index + 1, row + K);
    }

    fn forward_with<J: Join, const O: usize>(
        &self,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        ws: &mut Self::Workspace,
        index: usize,
        row: usize,
    ) {
        J::join(y, self.net.infer(x, &mut ws.trace), index, row);
        self.rest.forward_with::<J, O>(x, y, &mut ws.rest, index + 1, row + K);
    }

    fn forward_train<J: Join, const O: usize>(
        &mut self,
        x: &Batch<T, I>,
        y: &mut Batch<T, O>,
        ws: &mut Self::Workspace,
        index: usize,
        row: usize,
    ) {
        J::join(y, self.net.forward_train(x, &mut ws.trace), index, row);
        self.rest.forward_train::<J, O>(x, y, &mut ws.rest, index + 1, row + K);
    }

    fn backward<J: Join, const O: usize>(
        &self,
        x: &Batch<T, I>,
        dy: &Batch<T, O>,
        ws: &mut Self::Workspace,
        g: &mut Self::Gradients,
        mut dx: Option<&mut Batch<T, I>>,
        scratch: &mut Batch<T, I>,
        index: usize,
        row: usize,
    ) {
        let part = J::part(dy, row, &mut ws.dy);
        match dx.as_deref_mut() {
            Some(dx) if index == 0 => self.net.backward(x, &mut ws.trace, part, &mut g.net, Some(dx)),
            Some(dx) => {
                self.net.backward(x, &mut ws.trace, part, &mut g.net, Some(&mut *scratch));
                *dx += &*scratch;
            }
            None => self.net.backward(x, &mut ws.trace, part, &mut g.net, None),
        }
        self.rest.backward::<J, O>(x, dy, &mut ws.rest, &mut g.rest, dx, scratch, index + 1, row + K);
    }
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
}

/// How the layer reads in a network's `Debug`: `parallel(concat)` or `parallel(add)`.
impl<J: Join, L> fmt::Debug for Parallel<J, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(J::NAME)
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
