//! One step of a causal [`Attention`] at a time, for incremental decoding: the
//! keys and values of the steps before are kept in an [`AttentionCache`], so
//! step `p` costs the projections of one step and `p + 1` scores per head
//! instead of the whole window.
//!
//! The cache is a sample's `[q k v]` matrix of the full pass (`3D × STEPS`,
//! column `t` for step `t`), filled one column per step: step `p` projects its
//! input into column `p` and attends with its query to the keys and values of
//! columns `0..=p`, exactly the products the full pass makes for that query.

use super::{add_to_columns, Attention};
use crate::decode::StepLayer;
use crate::float::Float;
use crate::kernels::softmax::softmax_prefix;
use crate::kernels::Isa;
use crate::tensor::{gemm, Batch, MatRef};
use nalgebra::{DMatrixView, DMatrixViewMut};

/// What a causal [`Attention`] keeps between steps: `[q k v]` of every step so
/// far (keys and values are what later steps read), and scratch for one
/// step's scores and context. Allocated once, for the whole window.
pub struct AttentionCache<T: Float> {
    /// `3D × STEPS`, column-major: column `t` is step `t`'s `[q k v]`.
    qkv: Vec<T>,
    /// One head's scores, then probabilities, over the steps seen: `STEPS` values.
    probs: Vec<T>,
    /// The heads' contexts side by side: `D` values.
    ctx: Vec<T>,
}

impl<T: Float, const STEPS: usize, const D: usize, const HEADS: usize> StepLayer<T, D, D>
    for Attention<T, STEPS, D, HEADS>
{
    type Cache = AttentionCache<T>;

    fn step_cache(&self) -> AttentionCache<T> {
        AttentionCache {
            qkv: vec![T::zero(); 3 * D * STEPS],
            probs: vec![T::zero(); STEPS],
            ctx: vec![T::zero(); D],
        }
    }

    /// Step `pos` (`< STEPS`) of a causal layer, steps `0..pos` having been
    /// stepped through with the same cache: the step's query sees them and itself.
    /// A layer that is not causal lets every step see the whole window, which
    /// has not happened yet: `network!` decodes no network with one.
    fn step(&self, x: &Batch<T, D>, pos: usize, y: &mut Batch<T, D>, cache: &mut AttentionCache<T>) {
        let (d, dh, seen) = (D, D / HEADS, pos + 1);
        let AttentionCache { qkv, probs, ctx } = cache;
        // Column `pos` of [q k v] = W_in x + b_in.
        let column = &mut qkv[3 * d * pos..3 * d * seen];
        let mut out = DMatrixViewMut::from_slice(column, 3 * d, 1);
        gemm(T::one(), MatRef::of(&self.in_proj_weight).t(), MatRef::of(x), T::zero(), &mut out);
        add_to_columns(column, self.in_proj_bias.as_slice());

        let isa = Isa::active();
        let qkv = DMatrixView::from_slice(&qkv[..3 * d * seen], 3 * d, seen);
        let scale = T::one() / T::cast(dh as f64).sqrt();
        for h in 0..HEADS {
            let q = qkv.view((h * dh, pos), (dh, 1));
            let (k, v) = (qkv.rows(d + h * dh, dh), qkv.rows(2 * d + h * dh, dh));
            // Scores s_t = k_t · q / √dh over the steps seen, their softmax, and ctx_h = Σ_t p_t v_t.
            let mut scores = DMatrixViewMut::from_slice(&mut probs[..seen], seen, 1);
            gemm(scale, MatRef::of(&k).t(), MatRef::of(&q), T::zero(), &mut scores);
            softmax_prefix(isa, &mut probs[..seen], seen);
            let p = DMatrixView::from_slice(&probs[..seen], seen, 1);
            let mut out = DMatrixViewMut::from_slice(&mut ctx[h * dh..(h + 1) * dh], dh, 1);
            gemm(T::one(), MatRef::of(&v), MatRef::of(&p), T::zero(), &mut out);
        }

        // y = W_out ctx + b_out.
        let ctx = DMatrixView::from_slice(ctx, d, 1);
        crate::tensor::ensure_batch(y, 1);
        gemm(T::one(), MatRef::of(&*self.out_proj_weight).t(), MatRef::of(&ctx), T::zero(), y);
        add_to_columns(y.as_mut_slice(), self.out_proj_bias.as_slice());
    }
}
