//! The attention core of `layers::Attention` in f32, one sample (every head)
//! per call: the scores, their softmax and the context forward; the
//! probabilities' gradient, the softmax's backward and the gradients of `q`,
//! `k` and `v` backward.
//!
//! Layout (the layer's): a sample's `[q k v]` is a `3D × S` column-major
//! matrix (step `t`'s query of head `h` is `3D·t + h·dh ..`, its key `D`
//! further, its value `2D` further), its context (and the context's gradient)
//! `D × S`, and a head's probabilities an `S × S` matrix `M` whose column `t`
//! holds query `t`'s probabilities over the keys (`M[s, t]` at `S·t + s`).
//!
//! Each head's operands are first copied into a per-thread buffer: the keys
//! (forward) or values (backward) transposed, features by keys, padded with
//! zeros to whole registers; and the values, keys, queries and the context's
//! gradient contiguous, step by step. The strided `[q k v]` columns (1,536
//! bytes apart at `D = 128`) fall on a quarter of L1's sets; the packed head
//! is a few contiguous KiB. Two register tiles then do every product:
//!
//! - *keys in the lanes* (`S ≤ 64`, so one query's every key fits four
//!   registers): four queries' scores (or the probabilities' gradients) at
//!   once, summed over the features, then the softmax (or its backward) of each
//!   query in registers before the single store of its column;
//! - *features in the lanes*: up to eight steps' `dh`-long outputs (the
//!   context, `dq`, `dk`, `dv`), summed over the keys or queries with one
//!   probability (or score gradient) broadcast per step and output.
//!
//! With a causal mask, only the key registers a tile's queries see are
//! computed, and the sums over steps stop at the last key a tile's queries
//! see (or start at the first query that sees a tile's keys): the masked
//! probabilities and score gradients are zeros, so the sums add nothing from
//! them. Masked lanes inside a register are excluded from the softmax and its
//! backward.
//!
//! Levels: AVX-512 and the portable loops (direct sums by the definition's
//! order); at AVX2 the layer keeps its path through `sgemm` ([`HeadShape::supported`]
//! says no), as do f64 layers and shapes outside `S ≤ 64`, `dh ∈ {16, 32, 48, 64}`.
//! Levels differ only in the order of the sums and in `exp`'s last bits.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;
#[cfg(test)]
mod tests;

use super::Isa;
use crate::tensor::threads;
use std::sync::Once;

/// The most steps a sample may have: one query's keys fill at most four registers.
pub(crate) const MAX_STEPS: usize = 64;

thread_local! {
    /// This thread's room for a head's packed operands: sized on first use,
    /// then reused, so a pass allocates nothing. (Not an array on the stack:
    /// a frame of more than a page takes stack probes; see the journal's note.)
    static PACKED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The most values a head's packed operands take (any supported shape: see
/// [`HeadShape::scratch_len`] at 64 steps and 64 features): 80 KiB.
const CAPACITY: usize = MAX_STEPS * (MAX_STEPS + 3 * MAX_STEPS) + MAX_STEPS * MAX_STEPS;

/// Gives this thread its packing buffer now, sized for any shape, and has every
/// worker thread do the same when it starts (`threads::on_worker_start`), so
/// which thread runs which sample never makes a later step allocate. The layer
/// calls it before it splits a pass's samples between threads.
pub(crate) fn reserve_scratch() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| threads::on_worker_start(reserve_this_thread));
    reserve_this_thread();
}

fn reserve_this_thread() {
    with_scratch(CAPACITY, |_| ());
}

/// Calls `f` with this thread's room for `len` values (the buffer grows to
/// at least [`CAPACITY`] the first time).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    PACKED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len.max(CAPACITY), 0.0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// The sizes of one sample's attention core.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadShape {
    /// Steps per sample, `S`.
    pub(crate) steps: usize,
    /// Features of the layer, `D`.
    pub(crate) dim: usize,
    /// Heads; each has `D / heads` features.
    pub(crate) heads: usize,
    /// Whether step `t` sees steps `≤ t` only.
    pub(crate) causal: bool,
}

impl HeadShape {
    /// Features per head, `dh`.
    pub(crate) fn head_dim(&self) -> usize {
        self.dim / self.heads.max(1)
    }

    /// Whether these kernels take the shape at level `isa`: AVX-512 or the
    /// portable level, `1 ≤ S ≤ 64` and heads of 16, 32, 48 or 64 features.
    pub(crate) fn supported(&self, isa: Isa) -> bool {
        let dh = self.head_dim();
        matches!(isa, Isa::Avx512 | Isa::Portable)
            && (1..=MAX_STEPS).contains(&self.steps)
            && self.heads > 0
            && self.dim == dh * self.heads
            && matches!(dh, 16 | 32 | 48 | 64)
    }

    /// How many keys query `t` sees.
    fn seen(&self, t: usize) -> usize {
        if self.causal {
            t + 1
        } else {
            self.steps
        }
    }

    /// The scores' scale, `1/√dh`.
    fn scale(&self) -> f32 {
        1.0 / (self.head_dim() as f32).sqrt()
    }

    /// Values of one head's packed operands: the transposed keys or values
    /// (`dh × 64`), three `S × dh` copies, and the score gradients `dS` (`S × S`,
    /// kept here rather than in a batch-sized buffer, so they stay in cache).
    fn scratch_len(&self) -> usize {
        self.head_dim() * (MAX_STEPS + 3 * self.steps) + self.steps * self.steps
    }

    /// Panics unless the slices hold one sample at this shape.
    fn check(&self, qkv: usize, probs: usize, ctx: usize) {
        let (s, d) = (self.steps, self.dim);
        assert!(qkv == 3 * d * s, "attention core: [q k v] of {qkv} values, not 3·{d}·{s}");
        assert!(
            probs == self.heads * s * s,
            "attention core: {probs} probabilities for {} heads",
            self.heads
        );
        assert!(ctx == d * s, "attention core: context of {ctx} values, not {d}·{s}");
    }
}

/// The forward pass of one sample: `probs` (`HEADS × S × S`, each head's `M`)
/// and `ctx` (`D × S`) from `qkv` (`3D × S`). Returns `false`, having written
/// nothing, when the shape or level is not [`supported`](HeadShape::supported).
/// Panics if the CPU lacks `isa` or the slices do not fit the shape.
pub(crate) fn forward(isa: Isa, shape: &HeadShape, qkv: &[f32], probs: &mut [f32], ctx: &mut [f32]) -> bool {
    if !shape.supported(isa) {
        return false;
    }
    shape.check(qkv.len(), probs.len(), ctx.len());
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => with_scratch(shape.scratch_len(), |packed| {
            // SAFETY: the CPU has AVX-512F (`checked`); the shape is supported
            // and `check` asserted that every slice holds one sample at it,
            // which is all the kernel's indexing assumes; `packed` holds
            // `scratch_len` values.
            unsafe { avx512::forward(shape, qkv, probs, ctx, packed) }
        }),
        _ => portable::forward(shape, qkv, probs, ctx),
    }
    true
}

/// The backward pass of one sample: `dqkv` (`3D × S`) from `qkv`, the forward
/// pass's `probs` and `dctx` (`D × S`). Returns `false`, having
/// written nothing, when the shape or level is not supported. Panics as
/// [`forward`] does.
pub(crate) fn backward(
    isa: Isa,
    shape: &HeadShape,
    qkv: &[f32],
    probs: &[f32],
    dctx: &[f32],
    dqkv: &mut [f32],
) -> bool {
    if !shape.supported(isa) {
        return false;
    }
    shape.check(qkv.len(), probs.len(), dctx.len());
    shape.check(dqkv.len(), probs.len(), dctx.len());
    with_scratch(shape.scratch_len(), |packed| match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `forward`: AVX-512F checked, every slice checked to
        // hold one sample at this supported shape, `packed` of `scratch_len`.
        Isa::Avx512 => unsafe { avx512::backward(shape, qkv, probs, dctx, dqkv, packed) },
        _ => portable::backward(shape, qkv, probs, dctx, dqkv, &mut packed[..shape.steps * shape.steps]),
    });
    true
}
