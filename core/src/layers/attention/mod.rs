//! Multi-head scaled dot-product self-attention over a sequence: PyTorch's
//! `nn.MultiheadAttention(D, HEADS, batch_first = True)` called as `mha(x, x, x)`.
//!
//! A sample is `[STEPS, D]`, row-major (steps first), so a batch of `B` samples
//! is also a `D × (STEPS·B)` column-major matrix with one column per step of
//! every sample: the input and output projections are one product each over
//! all of them. The per-head part (`heads.rs`) works sample by sample.

mod heads;
mod params;
mod step;
#[cfg(test)]
mod tests;

use super::{ensure_len, Layer};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{Init, SeededRng};
use crate::tensor::{gemm, heap_zeros, Batch, HeapMatrix, MatRef};
use heads::Core;
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, DVector};
use rand_distr::{Distribution, Uniform};
pub use step::AttentionCache;

/// Multi-head self-attention `[STEPS, D] -> [STEPS, D]` with `HEADS` heads of
/// `D/HEADS` features each; with `causal`, step `t` attends to steps `≤ t` only.
///
/// Per sample, with `x` the `[STEPS, D]` input:
/// `[q k v] = x W_inᵀ + b_in`; for each head `h` (its `D/HEADS` columns of `q`,
/// `k`, `v`), `ctx_h = softmax(q_h k_hᵀ / sqrt(D/HEADS) + mask) v_h`; the heads'
/// contexts side by side make `ctx`, and `y = ctx W_outᵀ + b_out`.
///
/// Parameters, under PyTorch's names and layouts: `in_proj_weight` `[3D, D]`
/// (the query rows, then the key rows, then the value rows), `in_proj_bias`
/// `[3D]`, `out_proj.weight` `[D, D]`, `out_proj.bias` `[D]`. The weights are
/// held as their transposes (`D×3D`, `D×D` column-major matrices), whose memory
/// is exactly PyTorch's row-major tensors.
///
/// The causal mask is PyTorch's `attn_mask` with `−inf` above the diagonal,
/// without the `−inf`: each softmax covers only the steps its query sees, and
/// the masked probabilities are zeros. Longer sequences go in blocks of queries
/// whose products stop at the block's last step (`heads.rs`).
pub struct Attention<T: Float, const STEPS: usize, const D: usize, const HEADS: usize> {
    /// `in_proj_weight` transposed: column `j` is row `j` of PyTorch's `[3D, D]` tensor.
    in_proj_weight: DMatrix<T>,
    /// `in_proj_bias`: `3D` values (query, key, value).
    in_proj_bias: DVector<T>,
    /// `out_proj.weight` transposed: `out_proj_weight[(i, o)]` connects context feature `i` to output `o`.
    out_proj_weight: HeapMatrix<T, D, D>,
    /// `out_proj.bias`.
    out_proj_bias: HeapMatrix<T, D, 1>,
    causal: bool,
}

/// The gradient of a loss with respect to an [`Attention`] layer's parameters,
/// each held like the parameter itself (the weights transposed, so their memory
/// is PyTorch's row-major layout).
pub struct AttentionGrad<T: Float, const D: usize> {
    /// Of `in_proj_weight`, as a `D×3D` matrix (memory: row-major `[3D, D]`).
    pub in_proj_weight: DMatrix<T>,
    /// Of `in_proj_bias`, `3D` values.
    pub in_proj_bias: DVector<T>,
    /// Of `out_proj.weight`, as a `D×D` matrix (memory: row-major `[D, D]`).
    pub out_proj_weight: HeapMatrix<T, D, D>,
    /// Of `out_proj.bias`.
    pub out_proj_bias: HeapMatrix<T, D, 1>,
}

/// What an [`Attention`] pass keeps: the projections `[q k v]`, the attention
/// probabilities of every head and the concatenated context (which the backward
/// pass needs), and the backward pass's own scratch. Sized on the first pass
/// with a batch size and reused, so later passes allocate nothing.
#[derive(Default)]
pub struct AttentionWorkspace<T: Float> {
    /// `[q k v]` per step of every sample: a `3D × (STEPS·B)` column-major matrix.
    qkv: Vec<T>,
    /// The probabilities, `[B][HEADS][STEPS query][STEPS key]` row-major.
    probs: Vec<T>,
    /// The heads' contexts side by side: `D × (STEPS·B)`, laid out like the input.
    ctx: Vec<T>,
    /// The gradient with respect to `ctx`.
    dctx: Vec<T>,
    /// The gradient with respect to the scores, laid out like `probs`.
    dprobs: Vec<T>,
    /// The gradient with respect to `[q k v]`.
    dqkv: Vec<T>,
}

impl<T: Float> AttentionWorkspace<T> {
    /// The attention probabilities of the last pass, `[B][HEADS][STEPS][STEPS]`
    /// row-major: entry `[b][h][t][s]` is how much step `t` of sample `b` attends
    /// to step `s` in head `h` (PyTorch's `attn_weights` with
    /// `average_attn_weights = False`). Masked entries are zero.
    pub fn probabilities(&self) -> &[T] {
        &self.probs
    }
}

impl<T: Float, const STEPS: usize, const D: usize, const HEADS: usize> Attention<T, STEPS, D, HEADS> {
    /// Features per head: `D / HEADS`.
    pub const HEAD_DIM: usize = match D.checked_div(HEADS) {
        Some(dim) => dim,
        None => 0,
    };

    /// A layer with zero weights and biases, to be filled by loading.
    ///
    /// Errors: [`Error::InvalidConfig`] when `STEPS`, `D` or `HEADS` is zero, or
    /// `HEADS` does not divide `D` (naming both).
    pub fn zeros(causal: bool) -> Result<Self> {
        let problem = if STEPS == 0 || D == 0 || HEADS == 0 {
            Some(format!("Attention needs steps, features and heads, got [{STEPS}, {D}] with {HEADS} heads"))
        } else if !D.is_multiple_of(HEADS) {
            Some(format!(
                "Attention: {HEADS} heads do not divide {D} features ({D} % {HEADS} = {})",
                D % HEADS
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::InvalidConfig(problem));
        }
        Ok(Attention {
            in_proj_weight: DMatrix::zeros(D, 3 * D),
            in_proj_bias: DVector::zeros(3 * D),
            out_proj_weight: heap_zeros(),
            out_proj_bias: heap_zeros(),
            causal,
        })
    }

    /// A layer initialised like PyTorch's `nn.MultiheadAttention`: `in_proj_weight`
    /// Xavier (Glorot) uniform over its `[3D, D]` shape, U(±sqrt(6/(4D)));
    /// `out_proj.weight` `nn.Linear`'s default, U(±1/sqrt(D)); both biases zero.
    /// [`Init::He`] draws both weights He normal, N(0, 2/D), instead; [`Init::Auto`]
    /// and [`Init::Glorot`] are PyTorch's scheme. `in_proj_weight` is drawn first.
    ///
    /// Errors: as [`Attention::zeros`].
    pub fn new(causal: bool, init: Init, rng: &mut SeededRng) -> Result<Self> {
        let mut layer = Self::zeros(causal)?;
        match init.resolve(false) {
            Init::He => {
                Init::He.fill(layer.in_proj_weight.as_mut_slice(), D, 3 * D, rng);
                Init::He.fill(layer.out_proj_weight.as_mut_slice(), D, D, rng);
            }
            _ => {
                Init::Glorot.fill(layer.in_proj_weight.as_mut_slice(), D, 3 * D, rng);
                let bound = 1.0 / (D as f64).sqrt();
                if let Ok(uniform) = Uniform::new_inclusive(-bound, bound) {
                    layer.out_proj_weight.iter_mut().for_each(|w| *w = T::cast(uniform.sample(rng)));
                }
            }
        }
        Ok(layer)
    }

    /// Whether step `t` attends to steps `≤ t` only.
    pub fn causal(&self) -> bool {
        self.causal
    }

    /// The attention core's sizes.
    fn core(&self) -> Core {
        Core { steps: STEPS, dim: D, heads: HEADS, causal: self.causal }
    }

    /// The whole forward pass on a batch of `x.len() / (STEPS·D)` samples, keeping
    /// `[q k v]`, the probabilities and the context in `ws`.
    fn attend(&self, x: &[T], y: &mut [T], ws: &mut AttentionWorkspace<T>) {
        let batch = x.len() / (STEPS * D);
        let columns = STEPS * batch;
        ensure_len(&mut ws.qkv, 3 * D * columns);
        ensure_len(&mut ws.probs, HEADS * STEPS * STEPS * batch);
        ensure_len(&mut ws.ctx, D * columns);

        // [q k v] = W_in x + b_in, every step of every sample in one product.
        let x = DMatrixView::from_slice(x, D, columns);
        let mut qkv = DMatrixViewMut::from_slice(&mut ws.qkv, 3 * D, columns);
        gemm(T::one(), MatRef::of(&self.in_proj_weight).t(), MatRef::of(&x), T::zero(), &mut qkv);
        add_to_columns(&mut ws.qkv, self.in_proj_bias.as_slice());

        // ctx = the heads' softmax(q kᵀ/√(D/HEADS) + mask) v side by side, sample by sample.
        self.core().forward(&ws.qkv, &mut ws.probs, &mut ws.ctx);

        // y = W_out ctx + b_out, again in one product.
        let ctx = DMatrixView::from_slice(&ws.ctx, D, columns);
        let mut yv = DMatrixViewMut::from_slice(y, D, columns);
        gemm(T::one(), MatRef::of(&*self.out_proj_weight).t(), MatRef::of(&ctx), T::zero(), &mut yv);
        add_to_columns(y, self.out_proj_bias.as_slice());
    }

    /// Backward through [`Attention::attend`]: `ws` holds that pass's
    /// projections, probabilities and context for the same `x`.
    fn attend_backward(
        &self,
        x: &[T],
        dy: &[T],
        ws: &mut AttentionWorkspace<T>,
        grads: &mut AttentionGrad<T, D>,
        dx: Option<&mut [T]>,
    ) {
        let columns = x.len() / D;
        assert!(ws.ctx.len() == x.len(), "Attention::backward without the training pass on this batch");
        ensure_len(&mut ws.dctx, D * columns);
        ensure_len(&mut ws.dprobs, ws.probs.len());
        ensure_len(&mut ws.dqkv, 3 * D * columns);
        let dyv = DMatrixView::from_slice(dy, D, columns);

        // Output projection: dW_outᵀ = ctx dyᵀ, db_out = Σ dy, dctx = W_outᵀ dy.
        let ctx = DMatrixView::from_slice(&ws.ctx, D, columns);
        gemm(T::one(), MatRef::of(&ctx), MatRef::of(&dyv).t(), T::zero(), &mut *grads.out_proj_weight);
        sum_columns(grads.out_proj_bias.as_mut_slice(), dy);
        let mut dctx = DMatrixViewMut::from_slice(&mut ws.dctx, D, columns);
        gemm(T::one(), MatRef::of(&*self.out_proj_weight), MatRef::of(&dyv), T::zero(), &mut dctx);

        // Through the heads: d[q k v], sample by sample.
        self.core().backward(&ws.qkv, &ws.probs, &ws.dctx, &mut ws.dprobs, &mut ws.dqkv);

        // Input projection: dW_inᵀ = x d[q k v]ᵀ, db_in = Σ d[q k v], dx = W_inᵀ d[q k v].
        let xv = DMatrixView::from_slice(x, D, columns);
        let dqkv = DMatrixView::from_slice(&ws.dqkv, 3 * D, columns);
        gemm(T::one(), MatRef::of(&xv), MatRef::of(&dqkv).t(), T::zero(), &mut grads.in_proj_weight);
        sum_columns(grads.in_proj_bias.as_mut_slice(), &ws.dqkv);
        if let Some(dx) = dx {
            let mut dxv = DMatrixViewMut::from_slice(dx, D, columns);
            gemm(T::one(), MatRef::of(&self.in_proj_weight), MatRef::of(&dqkv), T::zero(), &mut dxv);
        }
    }
}

/// `m += b` on every column of the column-major `m` (columns of `b.len()` values).
fn add_to_columns<T: Float>(m: &mut [T], b: &[T]) {
    for column in m.chunks_exact_mut(b.len()) {
        column.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
    }
}

/// `sums = Σ` the columns of the column-major `m` (columns of `sums.len()` values).
fn sum_columns<T: Float>(sums: &mut [T], m: &[T]) {
    sums.fill(T::zero());
    for column in m.chunks_exact(sums.len()) {
        sums.iter_mut().zip(column).for_each(|(s, &v)| *s += v);
    }
}

impl<T: Float, const STEPS: usize, const D: usize, const HEADS: usize, const IN: usize, const OUT: usize>
    Layer<T, IN, OUT> for Attention<T, STEPS, D, HEADS>
{
    type Workspace = AttentionWorkspace<T>;
    type Gradients = AttentionGrad<T, D>;

    /// The inference pass; it allocates its scratch memory on every call, which
    /// [`Layer::forward_with`] avoids.
    fn forward(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>) {
        self.forward_with(x, y, &mut AttentionWorkspace::default())
    }

    fn forward_with(&self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut AttentionWorkspace<T>) {
        const { assert!(IN == STEPS * D && OUT == IN, "Attention maps [STEPS, D] to [STEPS, D]") };
        crate::tensor::ensure_batch(y, x.ncols());
        self.attend(x.as_slice(), y.as_mut_slice(), ws);
    }

    fn forward_train(&mut self, x: &Batch<T, IN>, y: &mut Batch<T, OUT>, ws: &mut AttentionWorkspace<T>) {
        self.forward_with(x, y, ws)
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        _y: &Batch<T, OUT>,
        dy: &Batch<T, OUT>,
        ws: &mut AttentionWorkspace<T>,
        grads: &mut AttentionGrad<T, D>,
        dx: Option<&mut Batch<T, IN>>,
    ) {
        const { assert!(IN == STEPS * D && OUT == IN, "Attention maps [STEPS, D] to [STEPS, D]") };
        let dx = dx.map(|dx| {
            crate::tensor::ensure_batch(dx, x.ncols());
            dx.as_mut_slice()
        });
        self.attend_backward(x.as_slice(), dy.as_slice(), ws, grads, dx);
    }
}
