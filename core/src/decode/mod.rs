//! Incremental decoding: a sequence network run one step at a time, each layer
//! keeping what later steps need (a causal attention's keys and values), so
//! step `p` computes only position `p` instead of the whole window.
//!
//! [`StepLayer`] is one step of one layer: `x` is step `pos`'s input features
//! (a one-column batch), `y` its output. Layers that act on each step alone
//! (embedding, positional, `dense` and `layer_norm` per step, activations,
//! dropout at inference) need no cache; a causal [`Attention`] keeps every
//! step's `[q k v]` ([`AttentionCache`]); an LSTM or GRU keeps its state
//! ([`RecurrentCache`]); `residual` blocks and networks chain their layers'
//! steps. `network!` implements `StepLayer` for every network whose layers all
//! have one (a sequence or token input, and no non-causal attention,
//! convolution, pooling, `last`, `parallel` or nested type):
//! the choice is made at compile time, so no network decodes to a wrong answer.
//!
//! A token network (`input: tokens[T]`) also gets [`Network::decoder`]: a
//! [`TokenDecoder`] behind the object-safe [`Decoder`], which is what
//! [`generate`](crate::generate::generate) uses.
//!
//! Positions are absolute (a `positional` table has one row per step), so a
//! cache covers one window of `T` steps from step 0; once the window is full,
//! the next token cannot reuse it (every step would move), and a new window
//! starts from [`Decoder::reset`].
//!
//! [`Attention`]: crate::layers::Attention
//! [`AttentionCache`]: crate::layers::AttentionCache
//! [`RecurrentCache`]: crate::layers::RecurrentCache
//! [`Network::decoder`]: crate::network::Network::decoder

mod decoder;

pub use decoder::{Decoder, TokenDecoder};

use crate::float::Float;
use crate::layers::{Activation, Dropout, Embedding, Layer, NoProjection, PerStep, Positional, Residual};
use crate::tensor::{ensure_batch, Batch};

/// One step of a sequence layer: `IN` features of step `pos` to its `OUT`
/// features, with what the earlier steps left in `cache`.
///
/// Steps must come in order from 0 with the same cache: step `pos` may read
/// what steps `0..pos` wrote. `x` and `y` hold one column.
pub trait StepLayer<T: Float, const IN: usize, const OUT: usize> {
    /// What the layer keeps between steps; `()` for layers that keep nothing.
    type Cache: Send;

    /// A cache for a whole window, allocated once: steps allocate nothing.
    fn step_cache(&self) -> Self::Cache;

    /// Step `pos`'s output `y` from its input `x`.
    fn step(&self, x: &Batch<T, IN>, pos: usize, y: &mut Batch<T, OUT>, cache: &mut Self::Cache);
}

/// Element-wise: the step is the activation of the step.
impl<T: Float, A: Activation, const N: usize> StepLayer<T, N, N> for A {
    type Cache = ();

    fn step_cache(&self) {}

    fn step(&self, x: &Batch<T, N>, _: usize, y: &mut Batch<T, N>, _: &mut ()) {
        Activation::forward(self, x, y)
    }
}

/// The identity, as in every pass but training.
impl<T: Float, const N: usize> StepLayer<T, N, N> for Dropout {
    type Cache = ();

    fn step_cache(&self) {}

    fn step(&self, x: &Batch<T, N>, _: usize, y: &mut Batch<T, N>, _: &mut ()) {
        ensure_batch(y, 1);
        y.copy_from(x);
    }
}

/// The inner layer on the one step; its workspace is the cache.
impl<T, L, const STEPS: usize, const F: usize, const H: usize> StepLayer<T, F, H> for PerStep<L, STEPS, F, H>
where
    T: Float,
    L: Layer<T, F, H>,
{
    type Cache = L::Workspace;

    fn step_cache(&self) -> L::Workspace {
        L::Workspace::default()
    }

    fn step(&self, x: &Batch<T, F>, _: usize, y: &mut Batch<T, H>, ws: &mut L::Workspace) {
        self.inner.forward_with(x, y, ws)
    }
}

/// The token id `x[0]`'s vector; a value that is not an id below `V` gives NaN, as the full pass does.
impl<T: Float, const STEPS: usize, const V: usize, const D: usize> StepLayer<T, 1, D>
    for Embedding<T, STEPS, V, D>
{
    type Cache = ();

    fn step_cache(&self) {}

    fn step(&self, x: &Batch<T, 1>, _: usize, y: &mut Batch<T, D>, _: &mut ()) {
        ensure_batch(y, 1);
        let v = x[0].as_f64();
        if v >= 0.0 && v < V as f64 && v.fract() == 0.0 {
            y.copy_from(&self.weight.column(v as usize));
        } else {
            y.fill(T::cast(f64::NAN));
        }
    }
}

/// `y = x + P[pos]`, the table's row for the step (`pos < STEPS`).
impl<T: Float, const STEPS: usize, const D: usize> StepLayer<T, D, D> for Positional<T, STEPS, D> {
    type Cache = ();

    fn step_cache(&self) {}

    fn step(&self, x: &Batch<T, D>, pos: usize, y: &mut Batch<T, D>, _: &mut ()) {
        ensure_batch(y, 1);
        let row = &self.weight.as_slice()[pos * D..(pos + 1) * D];
        y.iter_mut().zip(x.iter()).zip(row).for_each(|((y, &x), &p)| *y = x + p);
    }
}

/// `y = body(x) + x`: the body steps with its own cache.
impl<T: Float, B: StepLayer<T, N, N>, const N: usize> StepLayer<T, N, N> for Residual<B, NoProjection> {
    type Cache = B::Cache;

    fn step_cache(&self) -> B::Cache {
        self.body.step_cache()
    }

    fn step(&self, x: &Batch<T, N>, pos: usize, y: &mut Batch<T, N>, cache: &mut B::Cache) {
        self.body.step(x, pos, y, cache);
        *y += x;
    }
}
