//! `embedding → lstm | gru`: an embedding followed by a recurrent layer is one
//! linear map of a one-hot vector, so the recurrent layer's input projection
//! needs no product over every token of the batch.
//!
//! With the table `E` (`[V, D]`, row `v` the vector of token `v`) and the
//! input weight `W_ih` (`[G·H, D]`), the projection of token `v` is
//! `W_ih·e_v`, column `v` of `P = W_ih·Eᵀ` (`G·H × V`). So:
//!
//! - forward: `P` once (`G·H·V·D` multiply-adds instead of `G·H·(B·STEPS)·D`),
//!   whose column for each step's token the recurrence reads as it forms the
//!   step's gates ([`RecurrentInput::ByToken`]: the projection is never copied out);
//! - backward: the projection's gradient `dG` (`G·H × B·STEPS`) is added up by
//!   token into `dG_v` (`G·H × V`), then `dW_ih = dG_v·E`, the table's
//!   gradient `dE = dG_vᵀ·W_ih` and `db_ih` the sum of `dG_v`'s `V` columns,
//!   instead of `dW_ih = dG·Xᵀ`, `dX = W_ihᵀ·dG`, the embedding's own scatter
//!   of `dX` and a sum over every column of `dG`.
//!
//! The same sums in another order: the results agree with the layers one by
//! one to rounding. A batch with fewer tokens than `V` (where the table costs
//! more than it saves) runs the layers one by one. The embedding's output is
//! still written to the trace (a copy, for inspection and
//! [`Network::visit_outputs`](crate::Network::visit_outputs)); its gradient
//! is written only by the layer-by-layer path, since no layer reads it.

use crate::float::Float;
use crate::layers::recurrent::{
    product, sum_columns, transposed, view, view_mut, Recurrent, RecurrentInput, RecurrentWeights,
};
use crate::layers::{ensure_len, Embedding, EmbeddingGrad, Layer};
use crate::tensor::threads::{for_ranges, SharedSlice};
use crate::tensor::{ensure_batch, Batch, MatRef};

#[cfg(test)]
#[path = "embed_recurrent_tests.rs"]
mod tests;

/// What an `embedding → lstm | gru` backward pass reads: the ids, and the
/// outputs of the training forward pass ([`Embedding::forward_into_recurrent`]).
#[derive(Clone, Copy)]
pub struct EmbedRecurrentTrace<'a, T: Float, const STEPS: usize, const E: usize, const OUT: usize> {
    /// The token ids, the embedding's input.
    pub x: &'a Batch<T, STEPS>,
    /// The embedding's output, the recurrent layer's input.
    pub embedded: &'a Batch<T, E>,
    /// The recurrent layer's output.
    pub y: &'a Batch<T, OUT>,
}

/// The gradients an `embedding → lstm | gru` backward pass writes.
pub struct EmbedRecurrentGrads<
    'a,
    T: Float,
    const STEPS: usize,
    const V: usize,
    const D: usize,
    const E: usize,
> {
    /// The embedding table's.
    pub embedding: &'a mut EmbeddingGrad<T, V, D>,
    /// The recurrent layer's parameters'.
    pub recurrent: &'a mut RecurrentWeights<T>,
    /// With respect to the embedding's output: written by the layer-by-layer
    /// path only (the fused one never forms it).
    pub embedded: &'a mut Batch<T, E>,
    /// With respect to the ids, when asked for: zero, as [`Embedding`]'s.
    pub x: Option<&'a mut Batch<T, STEPS>>,
}

/// Whether a batch of `batch` samples runs through the table of projections:
/// it has at least as many tokens as the table has columns.
fn by_token(batch: usize, steps: usize, vocab: usize) -> bool {
    batch > 0 && vocab <= batch.saturating_mul(steps)
}

/// Values added per thread at least, for the sums by token.
const MIN_VALUES: usize = 1 << 15;

impl<T: Float, const STEPS: usize, const V: usize, const D: usize> Embedding<T, STEPS, V, D> {
    /// This embedding's forward pass and the recurrent layer `rnn`'s after it,
    /// with the projection of each token taken from a table computed once
    /// (the module docs): `embedded` receives the embedding's output and `y`
    /// the recurrent layer's, both resized to the batch if needed; `ws` is
    /// `rnn`'s workspace. `network!` calls this for `embedding, lstm | gru`,
    /// in training and inference alike (the recurrent layers keep no state).
    pub fn forward_into_recurrent<R, const E: usize, const OUT: usize>(
        &self,
        rnn: &R,
        x: &Batch<T, STEPS>,
        embedded: &mut Batch<T, E>,
        y: &mut Batch<T, OUT>,
        ws: &mut R::Workspace,
    ) where
        R: Recurrent<T, E, OUT>,
    {
        const { assert!(R::STEPS == STEPS && R::INPUTS == D, "an embedding of D features into the layer's steps") };
        let batch = x.ncols();
        Layer::forward(self, x, embedded);
        if !by_token(batch, STEPS, V) {
            return rnn.forward_with(embedded, y, ws);
        }
        ensure_batch(y, batch);
        let g = R::GATES * R::HIDDEN;
        let side = R::prepare(ws, batch);
        ensure_len(side.by_token, g * V);
        // P = W_ih · Eᵀ: column v is the projection of token v, which the recurrence reads.
        let (w_ih, table) =
            (transposed(rnn.weights().weight_ih(), g, D), view(self.weight.as_slice(), D, V, D));
        let mut p = view_mut(side.by_token, g, V, g);
        product(MatRef::of(&w_ih).t(), MatRef::of(&table), T::zero(), &mut p);
        let ids = x.as_slice();
        rnn.recur(y.as_mut_slice(), batch, ws, RecurrentInput::ByToken(&|c| Self::id(ids[c])));
    }

    /// The backward pass of [`Embedding::forward_into_recurrent`]: the
    /// recurrent layer's gradients and this table's, from the gradient `dy` of
    /// the recurrent layer's output (the module docs).
    pub fn backward_through_recurrent<R, const E: usize, const OUT: usize>(
        &self,
        rnn: &R,
        trace: EmbedRecurrentTrace<'_, T, STEPS, E, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut R::Workspace,
        grads: EmbedRecurrentGrads<'_, T, STEPS, V, D, E>,
    ) where
        R: Recurrent<T, E, OUT>,
    {
        const { assert!(R::STEPS == STEPS && R::INPUTS == D, "an embedding of D features into the layer's steps") };
        let EmbedRecurrentTrace { x, embedded, y } = trace;
        let EmbedRecurrentGrads { embedding, recurrent, embedded: d_embedded, x: dx } = grads;
        let batch = x.ncols();
        if !by_token(batch, STEPS, V) {
            rnn.backward(embedded, y, dy, ws, recurrent, Some(d_embedded));
            return Layer::backward(self, x, embedded, d_embedded, &mut (), embedding, dx);
        }
        let g = R::GATES * R::HIDDEN;
        let side = rnn.backprop_to_input(y.as_slice(), dy.as_slice(), batch, ws, recurrent);
        ensure_len(side.by_token, g * V);
        // dG_v: the projection's gradient added up by token.
        scatter_add(x.as_slice(), side.gradient, side.by_token, g, |v| Self::id(v));
        // db_ih = Σ dG over every column: the sum over V columns of dG_v.
        sum_columns(recurrent.bias_ih_mut(), side.by_token);
        R::complete_bias_gradients(recurrent);
        let (d_by_token, table) = (view(side.by_token, g, V, g), view(self.weight.as_slice(), D, V, D));
        // dW_ih = dG_v · E, written as PyTorch's [G·H, D] (a D × G·H column-major matrix: E · dG_vᵀ).
        let mut dw_ih = view_mut(recurrent.weight_ih_mut(), D, g, D);
        product(MatRef::of(&table), MatRef::of(&d_by_token).t(), T::zero(), &mut dw_ih);
        // dE = dG_vᵀ · W_ih, written as the [V, D] table (D × V column-major: W_ihᵀ · dG_v).
        let w_ih = transposed(rnn.weights().weight_ih(), g, D);
        let mut d_table = view_mut(embedding.weight.as_mut_slice(), D, V, D);
        product(MatRef::of(&w_ih), MatRef::of(&d_by_token), T::zero(), &mut d_table);
        if let Some(dx) = dx {
            ensure_batch(dx, batch);
            dx.fill(T::zero());
        }
    }
}

/// `by_token[:, v] = Σ_{c: id(ids[c]) = v} d[:, c]` (`g` rows each; values
/// that are not ids add nothing), every column added in order; the rows split
/// between threads, so the sums do not depend on the split.
fn scatter_add<T: Float>(
    ids: &[T],
    d: &[T],
    by_token: &mut [T],
    g: usize,
    id: impl Fn(T) -> Option<usize> + Sync,
) {
    by_token.fill(T::zero());
    let out = SharedSlice::new(by_token);
    for_ranges(g, MIN_VALUES.div_ceil(ids.len().max(1)), &|rows| {
        for (c, &value) in ids.iter().enumerate() {
            if let Some(v) = id(value) {
                // SAFETY: rows `rows` of column `v`, which lie in the buffer and belong to this range alone;
                // the reference ends with this statement.
                let column = unsafe { out.range(v * g + rows.start..v * g + rows.end) };
                column.iter_mut().zip(&d[c * g + rows.start..c * g + rows.end]).for_each(|(s, &d)| *s += d);
            }
        }
    });
}
