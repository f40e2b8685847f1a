//! The attention core, sample by sample and head by head: the scores, their
//! softmax and the context forward; the gradients of `q`, `k` and `v` backward.
//!
//! A sample's `[q k v]` is a `3D × STEPS` column-major matrix (one column per
//! step), so head `h`'s `qᵀ`, `kᵀ`, `vᵀ` are `D/HEADS`-row strided views of it
//! and every product is a `tensor::gemm` on views, with no copy. A head's
//! probabilities are a `STEPS × STEPS` matrix `M` whose column `t` holds query
//! `t`'s probabilities over the keys (`M = Pᵀ`: the softmax runs down a
//! contiguous column, and its memory is PyTorch's `[query][key]` row-major).
//!
//! With a causal mask, queries go in blocks of [`BLOCK`] steps and a block's
//! products reach only the keys up to its last step; the masked scores inside a
//! block are computed but never used: the softmax covers only the keys each
//! query sees (no `−inf`, no `exp` of it) and writes zeros over the rest, so
//! the products after it add nothing from them. Samples are split between threads (whole samples, so the
//! results do not depend on the thread count).
//!
//! In f32, a sample whose shape `kernels::attention` takes (up to 64 steps,
//! heads of 16, 32, 48 or 64 features, at AVX-512 or the portable level) goes
//! through that kernel instead: the same sums in register tiles, the causal
//! mask's upper triangle skipped, the softmax and its backward in registers.
//! f64, AVX2 and other shapes take the products below.

use crate::float::Float;
use crate::kernels::attention::{self, HeadShape};
use crate::kernels::softmax::softmax_prefix;
use crate::kernels::Isa;
use crate::tensor::threads::{for_ranges, SharedSlice};
use crate::tensor::{gemm, lane_sum, MatRef};
use nalgebra::{DMatrixView, DMatrixViewMut};

/// Queries per block of a causal pass. A block computes about `BLOCK²/2`
/// masked scores besides the `BLOCK × t` it needs. Smaller blocks skip more of
/// the mask but make smaller products: at `[64, 128]` with 4 heads (heads of 32
/// features), blocks of 16 or 32 made the core slower than one block of 64 in
/// both passes (forward 3.6–3.9 and 3.4–3.6 ms against 3.0–3.1 ms, backward
/// 4.6–6.0 ms against 4.3 ms, for a batch of 32: CPU time on one thread, with
/// the scalar softmax of the time), so sequences up to 64 steps run as one
/// block and only longer ones skip whole blocks of the mask.
const BLOCK: usize = 64;

/// A thread's share of the samples is at least this many multiply-adds.
const MIN_MACS_PER_THREAD: usize = 1 << 15;

/// The sizes of the attention core.
#[derive(Clone, Copy)]
pub(super) struct Core {
    pub(super) steps: usize,
    pub(super) dim: usize,
    pub(super) heads: usize,
    pub(super) causal: bool,
}

/// A run of queries `first..first + len` and the keys `0..keys` they see.
struct Queries {
    first: usize,
    len: usize,
    keys: usize,
}

/// A run of keys `first..first + len` and the queries `from..steps` that see them.
struct Keys {
    first: usize,
    len: usize,
    from: usize,
}

impl Core {
    fn head_dim(&self) -> usize {
        self.dim / self.heads
    }

    fn block(&self) -> usize {
        if self.causal {
            BLOCK
        } else {
            self.steps
        }
    }

    /// How many keys query `t` sees.
    fn seen(&self, t: usize) -> usize {
        if self.causal {
            t + 1
        } else {
            self.steps
        }
    }

    /// The queries in blocks, each with the keys it sees.
    fn query_blocks(&self) -> impl Iterator<Item = Queries> {
        let (steps, block, causal) = (self.steps, self.block(), self.causal);
        (0..steps).step_by(block).map(move |first| {
            let end = (first + block).min(steps);
            Queries { first, len: end - first, keys: if causal { end } else { steps } }
        })
    }

    /// The keys in blocks, each with the queries that see it.
    fn key_blocks(&self) -> impl Iterator<Item = Keys> {
        let (steps, block, causal) = (self.steps, self.block(), self.causal);
        (0..steps).step_by(block).map(move |first| Keys {
            first,
            len: (first + block).min(steps) - first,
            from: if causal { first } else { 0 },
        })
    }

    /// `1/sqrt(D/HEADS)`.
    fn scale<T: Float>(&self) -> T {
        T::one() / T::cast(self.head_dim() as f64).sqrt()
    }

    /// Calls `f(sample)` for every sample in `0..batch`, split between threads.
    fn per_sample(&self, batch: usize, f: &(dyn Fn(usize) + Sync)) {
        let macs = 2 * self.steps * self.steps * self.dim;
        let min_samples = MIN_MACS_PER_THREAD.div_ceil(macs.max(1));
        for_ranges(batch, min_samples, &|samples| samples.for_each(f));
    }

    /// `ctx` (`D × STEPS` per sample) from `qkv` (`3D × STEPS` per sample), keeping
    /// the probabilities in `probs` (`HEADS·STEPS²` per sample).
    pub(super) fn forward<T: Float>(&self, qkv: &[T], probs: &mut [T], ctx: &mut [T]) {
        let (s, d) = (self.steps, self.dim);
        let (per_qkv, per_probs, per_ctx) = (3 * d * s, self.heads * s * s, d * s);
        let batch = ctx.len() / per_ctx;
        self.reserve_kernel_scratch();
        let (probs, ctx) = (SharedSlice::new(probs), SharedSlice::new(ctx));
        self.per_sample(batch, &|b| {
            // SAFETY: sample `b`'s parts of the buffers; every sample goes to one thread only.
            let (p, c) = unsafe {
                (probs.range(b * per_probs..(b + 1) * per_probs), ctx.range(b * per_ctx..(b + 1) * per_ctx))
            };
            let qkv = &qkv[b * per_qkv..(b + 1) * per_qkv];
            if !self.kernel_forward(qkv, p, c) {
                self.forward_sample(qkv, p, c);
            }
        });
    }

    /// Before samples are split between threads: every thread's buffer for
    /// `kernels::attention`, when it takes this shape (once; a check afterwards).
    fn reserve_kernel_scratch(&self) {
        if self.kernel_shape().supported(Isa::active()) {
            attention::reserve_scratch();
        }
    }

    /// The shape as `kernels::attention` sees it.
    fn kernel_shape(&self) -> HeadShape {
        HeadShape { steps: self.steps, dim: self.dim, heads: self.heads, causal: self.causal }
    }

    /// One sample's forward pass through `kernels::attention` (f32, the
    /// shapes and levels it takes); `false`, having written nothing, otherwise.
    fn kernel_forward<T: Float>(&self, qkv: &[T], probs: &mut [T], ctx: &mut [T]) -> bool {
        match (T::f32s(qkv), T::f32s_mut(probs), T::f32s_mut(ctx)) {
            (Some(qkv), Some(p), Some(c)) => {
                attention::forward(Isa::active(), &self.kernel_shape(), qkv, p, c)
            }
            _ => false,
        }
    }

    /// [`Core::kernel_forward`] for one sample's backward pass (which keeps
    /// the score gradients in its own per-thread buffer, not in `dprobs`).
    fn kernel_backward<T: Float>(&self, qkv: &[T], probs: &[T], dctx: &[T], dqkv: &mut [T]) -> bool {
        let shape = self.kernel_shape();
        match (T::f32s(qkv), T::f32s(probs), T::f32s(dctx), T::f32s_mut(dqkv)) {
            (Some(x), Some(p), Some(dc), Some(dx)) => {
                attention::backward(Isa::active(), &shape, x, p, dc, dx)
            }
            _ => false,
        }
    }

    fn forward_sample<T: Float>(&self, qkv: &[T], probs: &mut [T], ctx: &mut [T]) {
        let (s, d, dh) = (self.steps, self.dim, self.head_dim());
        let isa = Isa::active();
        let qkv = DMatrixView::from_slice(qkv, 3 * d, s);
        let mut ctx = DMatrixViewMut::from_slice(ctx, d, s);
        for (h, p) in probs.chunks_exact_mut(s * s).enumerate() {
            let (q, k, v) = (qkv.rows(h * dh, dh), qkv.rows(d + h * dh, dh), qkv.rows(2 * d + h * dh, dh));
            // Scores: M[s, t] = k_s · q_t / √dh, over the keys each block of queries sees.
            let mut m = DMatrixViewMut::from_slice(p, s, s);
            for Queries { first, len, keys } in self.query_blocks() {
                let (kt, qt) = (k.columns(0, keys), q.columns(first, len));
                let mut out = m.view_mut((0, first), (keys, len));
                gemm(self.scale(), MatRef::of(&kt).t(), MatRef::of(&qt), T::zero(), &mut out);
            }
            // Probabilities: a softmax over the keys each query sees, zeros after them.
            for (t, column) in p.chunks_exact_mut(s).enumerate() {
                softmax_prefix(isa, column, self.seen(t));
            }
            // Context: ctx_t = Σ_s M[s, t] v_s, i.e. ctxᵀ = vᵀ M.
            let m = DMatrixView::from_slice(p, s, s);
            for Queries { first, len, keys } in self.query_blocks() {
                let (vt, mt) = (v.columns(0, keys), m.view((0, first), (keys, len)));
                let mut out = ctx.view_mut((h * dh, first), (dh, len));
                gemm(T::one(), MatRef::of(&vt), MatRef::of(&mt), T::zero(), &mut out);
            }
        }
    }

    /// `dqkv` from `dctx`, with the forward pass's `qkv` and `probs`; `dprobs`
    /// (shaped like `probs`) is scratch.
    pub(super) fn backward<T: Float>(
        &self,
        qkv: &[T],
        probs: &[T],
        dctx: &[T],
        dprobs: &mut [T],
        dqkv: &mut [T],
    ) {
        let (s, d) = (self.steps, self.dim);
        let (per_qkv, per_probs, per_ctx) = (3 * d * s, self.heads * s * s, d * s);
        let batch = dctx.len() / per_ctx;
        self.reserve_kernel_scratch();
        let (dprobs, dqkv) = (SharedSlice::new(dprobs), SharedSlice::new(dqkv));
        self.per_sample(batch, &|b| {
            // SAFETY: sample `b`'s parts of the buffers; every sample goes to one thread only.
            let (dp, dq) = unsafe {
                (dprobs.range(b * per_probs..(b + 1) * per_probs), dqkv.range(b * per_qkv..(b + 1) * per_qkv))
            };
            let qkv = &qkv[b * per_qkv..(b + 1) * per_qkv];
            let probs = &probs[b * per_probs..(b + 1) * per_probs];
            let dctx = &dctx[b * per_ctx..(b + 1) * per_ctx];
            if !self.kernel_backward(qkv, probs, dctx, dq) {
                self.backward_sample(qkv, probs, dctx, dp, dq);
            }
        });
    }

    fn backward_sample<T: Float>(
        &self,
        qkv: &[T],
        probs: &[T],
        dctx: &[T],
        dprobs: &mut [T],
        dqkv: &mut [T],
    ) {
        let (s, d, dh) = (self.steps, self.dim, self.head_dim());
        let qkv = DMatrixView::from_slice(qkv, 3 * d, s);
        let dctx = DMatrixView::from_slice(dctx, d, s);
        let mut dqkv = DMatrixViewMut::from_slice(dqkv, 3 * d, s);
        let heads = probs.chunks_exact(s * s).zip(dprobs.chunks_exact_mut(s * s));
        for (h, (p, dp)) in heads.enumerate() {
            let (q, k, v) = (qkv.rows(h * dh, dh), qkv.rows(d + h * dh, dh), qkv.rows(2 * d + h * dh, dh));
            let dc = dctx.rows(h * dh, dh);
            let m = DMatrixView::from_slice(p, s, s);
            // dv_s = Σ_t M[s, t] dctx_t: dvᵀ = dctxᵀ Mᵀ, over the queries that see each block of keys.
            for Keys { first, len, from } in self.key_blocks() {
                let (dct, mt) = (dc.columns(from, s - from), m.view((first, from), (len, s - from)));
                let mut out = dqkv.view_mut((2 * d + h * dh, first), (dh, len));
                gemm(T::one(), MatRef::of(&dct), MatRef::of(&mt).t(), T::zero(), &mut out);
            }
            // dM[s, t] = v_s · dctx_t.
            let mut dm = DMatrixViewMut::from_slice(dp, s, s);
            for Queries { first, len, keys } in self.query_blocks() {
                let (vt, dct) = (v.columns(0, keys), dc.columns(first, len));
                let mut out = dm.view_mut((0, first), (keys, len));
                gemm(T::one(), MatRef::of(&vt).t(), MatRef::of(&dct), T::zero(), &mut out);
            }
            // Through the softmax: dS = M ⊙ (dM − Σ_s dM ⊙ M), per query.
            for (t, (pc, gc)) in p.chunks_exact(s).zip(dp.chunks_exact_mut(s)).enumerate() {
                softmax_prefix_backward(pc, gc, self.seen(t));
            }
            let ds = DMatrixView::from_slice(dp, s, s);
            // dq_t = Σ_s dS[s, t] k_s / √dh: dqᵀ = kᵀ dS / √dh.
            for Queries { first, len, keys } in self.query_blocks() {
                let (kt, dst) = (k.columns(0, keys), ds.view((0, first), (keys, len)));
                let mut out = dqkv.view_mut((h * dh, first), (dh, len));
                gemm(self.scale(), MatRef::of(&kt), MatRef::of(&dst), T::zero(), &mut out);
            }
            // dk_s = Σ_t dS[s, t] q_t / √dh: dkᵀ = qᵀ dSᵀ / √dh.
            for Keys { first, len, from } in self.key_blocks() {
                let (qt, dst) = (q.columns(from, s - from), ds.view((first, from), (len, s - from)));
                let mut out = dqkv.view_mut((d + h * dh, first), (dh, len));
                gemm(self.scale(), MatRef::of(&qt), MatRef::of(&dst).t(), T::zero(), &mut out);
            }
        }
    }
}

/// `dp[..seen] = p ⊙ (dp − ⟨dp, p⟩)` in place: the gradient of the scores
/// from that of the probabilities `p`; the masked rest becomes 0.
fn softmax_prefix_backward<T: Float>(p: &[T], dp: &mut [T], seen: usize) {
    let (live, masked) = dp.split_at_mut(seen);
    let dot = lane_sum(std::iter::once((&*live, &p[..seen])), |g, p| g * p);
    live.iter_mut().zip(p).for_each(|(g, &p)| *g = p * (*g - dot));
    masked.fill(T::zero());
}

/// Timing, not a check: the core through `kernels::attention` against the
/// products, alternating on the same batch (GPT's `[64, 128]`, 4 causal heads,
/// 32 samples, one thread), the best of many short rounds:
/// `cargo test -p staticnet-core --lib heads_timing -- --ignored --nocapture`.
#[cfg(test)]
#[test]
#[ignore]
fn heads_timing() {
    use std::time::Instant;
    crate::tensor::threads::set_threads(1);
    let core = Core { steps: 64, dim: 128, heads: 4, causal: true };
    let (s, d, batch) = (64, 128, 32);
    let qkv: Vec<f32> = (0..3 * d * s * batch).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let dctx: Vec<f32> = (0..d * s * batch).map(|i| ((i * 104_729) % 1000) as f32 / 500.0 - 1.0).collect();
    let (mut probs, mut ctx) = (vec![0.0; 4 * s * s * batch], vec![0.0; d * s * batch]);
    let (mut dprobs, mut dqkv) = (vec![0.0; probs.len()], vec![0.0; qkv.len()]);
    let mut best = [[f64::MAX; 2]; 2];
    for round in 0..60 {
        let kernel = round % 2 == 0;
        let start = Instant::now();
        for b in 0..batch {
            let x = &qkv[b * 3 * d * s..][..3 * d * s];
            let (p, c) = (&mut probs[b * 4 * s * s..][..4 * s * s], &mut ctx[b * d * s..][..d * s]);
            if !(kernel && core.kernel_forward(x, p, c)) {
                core.forward_sample(x, p, c);
            }
        }
        let forward = start.elapsed().as_secs_f64();
        let start = Instant::now();
        for b in 0..batch {
            let x = &qkv[b * 3 * d * s..][..3 * d * s];
            let (p, dc) = (&probs[b * 4 * s * s..][..4 * s * s], &dctx[b * d * s..][..d * s]);
            let (dp, dx) =
                (&mut dprobs[b * 4 * s * s..][..4 * s * s], &mut dqkv[b * 3 * d * s..][..3 * d * s]);
            if !(kernel && core.kernel_backward(x, p, dc, dx)) {
                core.backward_sample(x, p, dc, dp, dx);
            }
        }
        let backward = start.elapsed().as_secs_f64();
        let best = &mut best[usize::from(kernel)];
        best[0] = best[0].min(forward);
        best[1] = best[1].min(backward);
    }
    // A calibration: one large product's rate on this machine now.
    let (n, mut best_gemm) = (512, f64::MAX);
    let (a, bm) = (
        nalgebra::DMatrix::<f32>::from_element(n, n, 0.5),
        nalgebra::DMatrix::<f32>::from_element(n, n, 0.25),
    );
    let mut c = nalgebra::DMatrix::<f32>::zeros(n, n);
    for _ in 0..20 {
        let start = Instant::now();
        gemm(1.0, MatRef::of(&a), MatRef::of(&bm), 0.0, &mut c);
        best_gemm = best_gemm.min(start.elapsed().as_secs_f64());
    }
    println!("sgemm {n}³: {:.1} GFLOP/s", 2.0 * (n * n * n) as f64 / best_gemm / 1e9);
    for (name, [f, b]) in ["products", "kernel"].iter().zip(best) {
        println!("{name}: forward {:.3} ms, backward {:.3} ms per batch of {batch}", f * 1e3, b * 1e3);
    }
}
