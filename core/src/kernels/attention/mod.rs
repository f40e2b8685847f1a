//! One head of one sample of `layers::Attention` in f32: the scores `kᵀq`,
//! their softmax and the context `v·P` forward; the probabilities' gradient
//! `vᵀ·dctx`, the softmax's backward and the gradients of `q`, `k` and `v`
//! backward. Every product runs as register tiles of [`COLS`] columns that
//! read the projections where they lie (only `k`, or `v` backward, is
//! transposed, into a per-thread buffer), with no packing and no call per product.
//!
//! Layout (the layer's): a sample's `[q k v]` is a `3D × S` column-major
//! matrix (step `t`'s query is `3D·t + h·dh ..`, its key `D` further, its
//! value `2D` further), its context (and the context's gradient) `D × S`, and
//! a head's probabilities an `S × S` matrix `M` whose column `t` holds query
//! `t`'s probabilities over the keys (`M[s, t]` at `S·t + s`).
//!
//! With a causal mask, tiles of scores wholly above the diagonal are skipped,
//! and the sums over steps stop at the last key a tile's queries see (or
//! start at the first query that sees a tile's keys): about 55–60% of the
//! multiply-adds of the unmasked products. Masked scores inside a tile are
//! computed and then overwritten with zeros by the softmax (forward) or its
//! backward, so the sums after them add nothing from them.
//!
//! Levels: AVX-512 and the portable tiles; at AVX2 the layer keeps its path
//! through `sgemm` (`supported` says no). Levels differ only in the order of
//! the sums and in `exp`'s last bits.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;
#[cfg(test)]
mod tests;

use super::softmax::softmax_prefix;
use super::Isa;
use std::ops::Range;

/// Columns of every tile (queries, or keys for the gradients of `k` and `v`).
const COLS: usize = 8;
/// Rows of a tile: 32, or 16 for the last rows of a head of 16·odd features or steps.
const ROWS: usize = 32;
/// The most values of a head's transposed keys (`steps × head_dim`).
const MAX_TRANSPOSED: usize = 8192;

thread_local! {
    /// This thread's room for a head's transposed keys (or values): sized once,
    /// then reused, so a pass allocates nothing. (Not an array on the stack: a
    /// frame of more than a page takes stack probes, and LLVM's inline probe
    /// clobbered a live register here, rustc 1.95, release builds.)
    static TRANSPOSED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Calls `f` with this thread's room for `len` values.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    TRANSPOSED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len.max(MAX_TRANSPOSED), 0.0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// The sizes of one head's attention.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadShape {
    /// Steps per sample, `S`.
    pub(crate) steps: usize,
    /// Features of the layer, `D`.
    pub(crate) dim: usize,
    /// Features per head, `dh`.
    pub(crate) head_dim: usize,
    /// Whether step `t` sees steps `≤ t` only.
    pub(crate) causal: bool,
    /// The scores' scale, `1/√dh`.
    pub(crate) scale: f32,
}

impl HeadShape {
    /// Whether these kernels take the head at level `isa`: whole tiles
    /// (`S` and `dh` multiples of 16), a transposed head that fits
    /// [`MAX_TRANSPOSED`], and AVX-512 or the portable level.
    pub(crate) fn supported(&self, isa: Isa) -> bool {
        let (s, dh) = (self.steps, self.head_dim);
        matches!(isa, Isa::Avx512 | Isa::Portable)
            && s > 0
            && dh > 0
            && s.is_multiple_of(16)
            && dh.is_multiple_of(16)
            && self.dim.is_multiple_of(dh)
            && s * dh <= MAX_TRANSPOSED
    }

    /// How many keys query `t` sees.
    fn seen(&self, t: usize) -> usize {
        if self.causal {
            t + 1
        } else {
            self.steps
        }
    }

    /// The keys the queries `t0..t0 + COLS` see: the sum's range for the context and `dq`.
    fn keys_of(&self, t0: usize) -> Range<usize> {
        0..if self.causal { t0 + COLS } else { self.steps }
    }

    /// The queries that see the keys `s0..s0 + COLS`: the sum's range for `dk` and `dv`.
    fn queries_of(&self, s0: usize) -> Range<usize> {
        (if self.causal { s0 } else { 0 })..self.steps
    }

    /// The row tiles of `len` rows: `(first, rows)` with `rows` 32 or 16.
    fn row_tiles(len: usize) -> impl Iterator<Item = (usize, usize)> {
        (0..len).step_by(ROWS).map(move |i| (i, (len - i).min(ROWS)))
    }
}

/// One register tile: `c[o_c + i + j·ldc] = alpha·Σ_{p ∈ p} a[o_a + p·lda + i]·b[o_b + p·bp + j·bj]`
/// for `i < rows` (16 or 32) and `j < COLS`.
struct Tile {
    rows: usize,
    p: Range<usize>,
    a: usize,
    lda: usize,
    b: usize,
    bp: usize,
    bj: usize,
    c: usize,
    ldc: usize,
    alpha: f32,
}

impl Tile {
    /// Runs the tile at level `isa` (AVX-512 or portable), after checking
    /// that every element it reads or writes lies in its slice.
    fn run(&self, isa: Isa, a: &[f32], b: &[f32], c: &mut [f32]) {
        let end = |base: usize, last: [(usize, usize); 2]| {
            last.iter().try_fold(base, |acc, &(n, step)| n.checked_mul(step).and_then(|x| acc.checked_add(x)))
        };
        assert!(self.rows == 16 || self.rows == 32, "attention tile of {} rows", self.rows);
        if let Some(last) = self.p.clone().last() {
            let a_end = end(self.a + self.rows, [(last, self.lda), (0, 0)]);
            let b_end = end(self.b + 1, [(last, self.bp), (COLS - 1, self.bj)]);
            assert!(a_end.is_some_and(|e| e <= a.len()), "attention tile: A out of bounds");
            assert!(b_end.is_some_and(|e| e <= b.len()), "attention tile: B out of bounds");
        }
        let c_end = end(self.c + self.rows, [(COLS - 1, self.ldc), (0, 0)]);
        assert!(c_end.is_some_and(|e| e <= c.len()), "attention tile: C out of bounds");
        match isa.checked() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX-512F (`checked`), and every element the
            // tile reads (rows `a + p·lda + i`, `b + p·bp + j·bj` for `p` in
            // the range) and writes (`c + j·ldc + i`) was checked above to lie
            // in `a`, `b` and `c`; `c` is borrowed mutably, so it aliases neither.
            Isa::Avx512 => unsafe {
                avx512::tile(
                    self.rows,
                    self.p.clone(),
                    a.as_ptr().add(self.a),
                    self.lda,
                    b.as_ptr().add(self.b),
                    self.bp,
                    self.bj,
                    self.alpha,
                    c.as_mut_ptr().add(self.c),
                    self.ldc,
                )
            },
            _ => portable::tile(self, a, b, c),
        }
    }
}

/// `out[i·S + key] = qkv[key·3D + offset + i]`: one head's keys (or values), transposed.
fn transpose(shape: &HeadShape, qkv: &[f32], offset: usize, out: &mut [f32]) {
    let (s, dh, stride) = (shape.steps, shape.head_dim, 3 * shape.dim);
    for (key, column) in qkv.chunks_exact(stride).take(s).enumerate() {
        for (i, &v) in column[offset..offset + dh].iter().enumerate() {
            out[i * s + key] = v;
        }
    }
}

/// The forward pass of head `h`: `probs` (its `S × S` probabilities) and its
/// rows of `ctx` (`D × S`) from the sample's `qkv` (`3D × S`). Returns
/// `false`, having written nothing, when the shape or level is not
/// [`supported`](HeadShape::supported).
pub(crate) fn forward(
    isa: Isa,
    shape: &HeadShape,
    h: usize,
    qkv: &[f32],
    probs: &mut [f32],
    ctx: &mut [f32],
) -> bool {
    if !shape.supported(isa) {
        return false;
    }
    with_scratch(shape.steps * shape.head_dim, |kt| forward_head(isa, shape, h, qkv, kt, probs, ctx));
    true
}

/// [`forward`] with `kt` room for the transposed keys.
fn forward_head(
    isa: Isa,
    shape: &HeadShape,
    h: usize,
    qkv: &[f32],
    kt: &mut [f32],
    probs: &mut [f32],
    ctx: &mut [f32],
) {
    let (s, d, dh) = (shape.steps, shape.dim, shape.head_dim);
    transpose(shape, qkv, d + h * dh, kt);
    // Scores: M[key, t] = k_key · q_t / √dh, tiles of 32 keys by 8 queries.
    for t0 in (0..s).step_by(COLS) {
        for (i0, rows) in HeadShape::row_tiles(s).take_while(|&(i0, _)| !shape.causal || i0 < t0 + COLS) {
            let b = t0 * 3 * d + h * dh;
            let tile = Tile {
                rows,
                p: 0..dh,
                a: i0,
                lda: s,
                b,
                bp: 1,
                bj: 3 * d,
                c: t0 * s + i0,
                ldc: s,
                alpha: shape.scale,
            };
            tile.run(isa, kt, qkv, probs);
        }
    }
    for (t, column) in probs.chunks_exact_mut(s).enumerate() {
        softmax_prefix(isa, column, shape.seen(t));
    }
    // Context: ctx_t = Σ_key M[key, t] v_key.
    for t0 in (0..s).step_by(COLS) {
        for (i0, rows) in HeadShape::row_tiles(dh) {
            let (a, c) = (2 * d + h * dh + i0, t0 * d + h * dh + i0);
            let tile = Tile {
                rows,
                p: shape.keys_of(t0),
                a,
                lda: 3 * d,
                b: t0 * s,
                bp: 1,
                bj: s,
                c,
                ldc: d,
                alpha: 1.0,
            };
            tile.run(isa, qkv, probs, ctx);
        }
    }
}

/// The backward pass of head `h`: its rows of `dqkv` (`3D × S`) from the
/// sample's `qkv`, the head's `probs` and the sample's `dctx` (`D × S`);
/// `dprobs` (`S × S`) is scratch. Returns `false`, having written nothing,
/// when the shape or level is not [`supported`](HeadShape::supported).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    isa: Isa,
    shape: &HeadShape,
    h: usize,
    qkv: &[f32],
    probs: &[f32],
    dctx: &[f32],
    dprobs: &mut [f32],
    dqkv: &mut [f32],
) -> bool {
    if !shape.supported(isa) {
        return false;
    }
    with_scratch(shape.steps * shape.head_dim, |vt| {
        backward_head(isa, shape, h, qkv, probs, dctx, vt, dprobs, dqkv)
    });
    true
}

/// [`backward`] with `vt` room for the transposed values.
#[allow(clippy::too_many_arguments)]
fn backward_head(
    isa: Isa,
    shape: &HeadShape,
    h: usize,
    qkv: &[f32],
    probs: &[f32],
    dctx: &[f32],
    vt: &mut [f32],
    dprobs: &mut [f32],
    dqkv: &mut [f32],
) {
    let (s, d, dh) = (shape.steps, shape.dim, shape.head_dim);
    transpose(shape, qkv, 2 * d + h * dh, vt);
    // dM[key, t] = v_key · dctx_t.
    for t0 in (0..s).step_by(COLS) {
        for (i0, rows) in HeadShape::row_tiles(s).take_while(|&(i0, _)| !shape.causal || i0 < t0 + COLS) {
            let b = t0 * d + h * dh;
            let tile =
                Tile { rows, p: 0..dh, a: i0, lda: s, b, bp: 1, bj: d, c: t0 * s + i0, ldc: s, alpha: 1.0 };
            tile.run(isa, vt, dctx, dprobs);
        }
    }
    // Through the softmax: dS = M ⊙ (dM − ⟨dM, M⟩) per query, zeros where masked.
    for (t, (p, g)) in probs.chunks_exact(s).zip(dprobs.chunks_exact_mut(s)).enumerate() {
        portable::softmax_prefix_backward(p, g, shape.seen(t));
    }
    for t0 in (0..s).step_by(COLS) {
        for (i0, rows) in HeadShape::row_tiles(dh) {
            // dq_t = Σ_key dS[key, t] k_key / √dh.
            let (a, c) = (d + h * dh + i0, t0 * 3 * d + h * dh + i0);
            let tile = Tile {
                rows,
                p: shape.keys_of(t0),
                a,
                lda: 3 * d,
                b: t0 * s,
                bp: 1,
                bj: s,
                c,
                ldc: 3 * d,
                alpha: shape.scale,
            };
            tile.run(isa, qkv, dprobs, dqkv);
        }
    }
    for s0 in (0..s).step_by(COLS) {
        for (i0, rows) in HeadShape::row_tiles(dh) {
            // dk_key = Σ_t dS[key, t] q_t / √dh.
            let c = s0 * 3 * d + d + h * dh + i0;
            let tile = Tile {
                rows,
                p: shape.queries_of(s0),
                a: h * dh + i0,
                lda: 3 * d,
                b: s0,
                bp: s,
                bj: 1,
                c,
                ldc: 3 * d,
                alpha: shape.scale,
            };
            tile.run(isa, qkv, dprobs, dqkv);
            // dv_key = Σ_t M[key, t] dctx_t.
            let c = s0 * 3 * d + 2 * d + h * dh + i0;
            let tile = Tile {
                rows,
                p: shape.queries_of(s0),
                a: h * dh + i0,
                lda: d,
                b: s0,
                bp: s,
                bj: 1,
                c,
                ldc: 3 * d,
                alpha: 1.0,
            };
            tile.run(isa, dctx, probs, dqkv);
        }
    }
}
