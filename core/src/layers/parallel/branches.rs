//! The branches of a [`Parallel`](super::Parallel) layer run one after
//! another: the passes over a [`Branch`](super::Branch) list.

use super::{Branch, BranchParams, Join};
use crate::float::Float;
use crate::network::Network;
use crate::tensor::Batch;

/// A list of branches over inputs of `I` values: what [`Parallel`](super::Parallel) runs one
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
