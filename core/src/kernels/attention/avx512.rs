//! The attention core with AVX-512: the packing, the keys-in-lanes tile
//! (four queries, with the softmax or its backward in registers) and the
//! features-in-lanes tile (up to eight steps' outputs).

use super::{HeadShape, MAX_STEPS};
use crate::kernels::simd::avx512::exp;
use std::arch::x86_64::*;
use std::ops::Range;

/// Lanes of a register.
const LANES: usize = 16;
/// Queries of a keys-in-lanes tile.
const QUERIES: usize = 4;

/// The lanes `l` of the register starting at key `base` with `base + l < n`.
#[inline(always)]
fn below(n: usize, base: usize) -> __mmask16 {
    let left = n.saturating_sub(base).min(LANES) as u32;
    ((1u32 << left) - 1) as __mmask16
}

/// `dst[i·64 + t] = src[t·stride + off + i]` for `t < steps`, `i < dh`, and
/// zeros for `steps ≤ t` up to the next multiple of 16: one head's keys (or
/// values) transposed, features by keys, in blocks of 16 × 16 transposed in registers.
///
/// # Safety
/// AVX-512F; `dh` is a multiple of 16, `steps ≤ 64`, `src` holds `dh` values
/// at `t·stride + off` for every `t < steps`, and `dst` holds `dh × 64`.
#[inline(always)]
unsafe fn pack_transposed(src: &[f32], stride: usize, off: usize, dh: usize, steps: usize, dst: &mut [f32]) {
    assert!(src.len() >= (steps - 1) * stride + off + dh && dst.len() >= dh * MAX_STEPS);
    for t0 in (0..steps).step_by(LANES) {
        for f0 in (0..dh).step_by(LANES) {
            // SAFETY: rows `t < steps` read the 16 values at `t·stride + off + f0`
            // (`f0 + 16 ≤ dh`), inside `src` by the assertion; the stores write
            // 16 values at `(f0 + f)·64 + t0` with `t0 + 16 ≤ 64`, inside `dst`.
            unsafe {
                let mut r = [_mm512_setzero_ps(); LANES];
                for (i, r) in r.iter_mut().enumerate().take(steps - t0) {
                    *r = _mm512_loadu_ps(src.as_ptr().add((t0 + i) * stride + off + f0));
                }
                let r = transpose16(r);
                for (f, r) in r.iter().enumerate() {
                    _mm512_storeu_ps(dst.as_mut_ptr().add((f0 + f) * MAX_STEPS + t0), *r);
                }
            }
        }
    }
}

/// `dst[t·dh + i] = src[t·stride + off + i]` for `t < steps`, `i < dh`: one
/// head's rows, contiguous (the strided columns of `[q k v]`, 1,536 bytes
/// apart at `D = 128`, fall on a quarter of L1's sets).
///
/// # Safety
/// AVX-512F; `dh` is a multiple of 16.
#[inline(always)]
unsafe fn pack_rows(src: &[f32], stride: usize, off: usize, dh: usize, steps: usize, dst: &mut [f32]) {
    assert!(src.len() >= (steps - 1) * stride + off + dh && dst.len() >= steps * dh);
    /// [`pack_rows`] with `dh = 16R`: a copy of known size, in registers
    /// (with `dh` unknown, LLVM turns the loop into a `memmove` call per step).
    #[inline(always)]
    unsafe fn copy<const R: usize>(src: *const f32, stride: usize, steps: usize, dst: *mut f32) {
        for t in 0..steps {
            for r in 0..R {
                // SAFETY: the caller's promise: 16R values at `src + t·stride` and `dst + t·16R`.
                unsafe {
                    let x = _mm512_loadu_ps(src.add(t * stride + LANES * r));
                    _mm512_storeu_ps(dst.add(t * LANES * R + LANES * r), x);
                }
            }
        }
    }
    let (src, dst) = (src[off..].as_ptr(), dst.as_mut_ptr());
    // SAFETY: by the assertion, `src` holds `dh` values at `off + t·stride` and
    // `dst` `dh` values at `t·dh` for every `t < steps`; `dh` is a multiple of 16.
    unsafe {
        match dh / LANES {
            1 => copy::<1>(src, stride, steps, dst),
            2 => copy::<2>(src, stride, steps, dst),
            3 => copy::<3>(src, stride, steps, dst),
            _ => copy::<4>(src, stride, steps, dst),
        }
    }
}

/// The transpose of the 16 × 16 matrix whose rows are `r`.
///
/// # Safety
/// AVX-512F.
#[inline(always)]
unsafe fn transpose16(mut r: [__m512; LANES]) -> [__m512; LANES] {
    // SAFETY: register operations only; AVX-512F is the caller's promise.
    unsafe {
        let mut t = [_mm512_setzero_ps(); LANES];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // In each 128-bit lane L, `r[4i + c]` now holds element `4L + c` of rows `4i..4i + 4`.
        for i in 0..4 {
            r[4 * i] = _mm512_shuffle_ps::<0x44>(t[4 * i], t[4 * i + 2]);
            r[4 * i + 1] = _mm512_shuffle_ps::<0xEE>(t[4 * i], t[4 * i + 2]);
            r[4 * i + 2] = _mm512_shuffle_ps::<0x44>(t[4 * i + 1], t[4 * i + 3]);
            r[4 * i + 3] = _mm512_shuffle_ps::<0xEE>(t[4 * i + 1], t[4 * i + 3]);
        }
        let mut out = [_mm512_setzero_ps(); LANES];
        for c in 0..4 {
            let even = (
                _mm512_shuffle_f32x4::<0x88>(r[c], r[4 + c]),
                _mm512_shuffle_f32x4::<0x88>(r[8 + c], r[12 + c]),
            );
            let odd = (
                _mm512_shuffle_f32x4::<0xDD>(r[c], r[4 + c]),
                _mm512_shuffle_f32x4::<0xDD>(r[8 + c], r[12 + c]),
            );
            out[c] = _mm512_shuffle_f32x4::<0x88>(even.0, even.1);
            out[8 + c] = _mm512_shuffle_f32x4::<0xDD>(even.0, even.1);
            out[4 + c] = _mm512_shuffle_f32x4::<0x88>(odd.0, odd.1);
            out[12 + c] = _mm512_shuffle_f32x4::<0xDD>(odd.0, odd.1);
        }
        out
    }
}

/// The keys-in-lanes sums: `acc[j][r]` lane `l` = `Σ_i at[i·64 + 16r + l]·b[cols[j] + i]`.
///
/// # Safety
/// AVX-512F; `at` addresses `dh × 64` values (`R ≤ 4`), and `b + cols[j]` `dh`
/// values for every `j`.
#[inline(always)]
unsafe fn key_sums<const R: usize>(
    at: *const f32,
    dh: usize,
    b: *const f32,
    cols: [usize; QUERIES],
) -> [[__m512; R]; QUERIES] {
    // SAFETY: the reads stay in the ranges the caller promised (`i < dh`,
    // `16r + 15 < 64`); AVX-512F is its promise too.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); R]; QUERIES];
        for i in 0..dh {
            let mut a = [_mm512_setzero_ps(); R];
            for (r, a) in a.iter_mut().enumerate() {
                *a = _mm512_loadu_ps(at.add(i * MAX_STEPS + LANES * r));
            }
            for (acc, &col) in acc.iter_mut().zip(&cols) {
                let x = _mm512_set1_ps(*b.add(col + i));
                for (s, &a) in acc.iter_mut().zip(&a) {
                    *s = _mm512_fmadd_ps(a, x, *s);
                }
            }
        }
        acc
    }
}

/// The features-in-lanes sums, written out:
/// `c[j·ldc + k] = alpha·Σ_{p ∈ p} a[p·lda + k]·b[p·bp + cols[j]]` for `j < n`, `k < 16R`.
///
/// # Safety
/// AVX-512F; for every `p` in the range, the `16R` values at `a + p·lda` and
/// the values at `b + p·bp + cols[j]` are readable, and the `16R` values at
/// `c + j·ldc` writable for `j < n ≤ J`, aliasing neither.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn step_tile<const R: usize, const J: usize>(
    (a, lda): (*const f32, usize),
    p: Range<usize>,
    b: *const f32,
    bp: usize,
    cols: [usize; J],
    alpha: f32,
    c: *mut f32,
    ldc: usize,
    n: usize,
) {
    // SAFETY: the caller's promise, passed on.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); R]; J];
        for p in p {
            let (ap, bp) = (a.add(p * lda), b.add(p * bp));
            let mut av = [_mm512_setzero_ps(); R];
            for (r, v) in av.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(ap.add(LANES * r));
            }
            for (acc, &col) in acc.iter_mut().zip(&cols) {
                let x = _mm512_set1_ps(*bp.add(col));
                for (s, &a) in acc.iter_mut().zip(&av) {
                    *s = _mm512_fmadd_ps(a, x, *s);
                }
            }
        }
        let alpha = _mm512_set1_ps(alpha);
        for (j, acc) in acc.iter().enumerate().take(n) {
            for (r, &s) in acc.iter().enumerate() {
                _mm512_storeu_ps(c.add(j * ldc + LANES * r), _mm512_mul_ps(s, alpha));
            }
        }
    }
}

/// Which sums a features-in-lanes pass makes (see [`steps`]).
struct StepPass<'a> {
    /// The rows summed, `S × dh`: step `p`'s `dh` values at `p·dh`.
    a: &'a [f32],
    /// The head's `M` (or `dS`).
    b: &'a [f32],
    /// Whether the sum runs over the keys of queries (`M`'s columns: the
    /// context, `dq`) or over the queries of keys (`M`'s rows: `dk`, `dv`).
    over_keys: bool,
    alpha: f32,
    /// Where step 0's output starts in `c`, and the distance between steps.
    c0: usize,
    ldc: usize,
}

/// One features-in-lanes pass over every step: tiles of `J` steps.
///
/// # Safety
/// AVX-512F; `pass.a` holds `S × 16R` values, `pass.b` `S × S`, and `c`
/// the `16R` values at `c0 + t·ldc` for every step `t < S`.
#[inline(always)]
unsafe fn steps<const R: usize, const J: usize>(shape: &HeadShape, pass: &StepPass<'_>, c: &mut [f32]) {
    let s = shape.steps;
    for t0 in (0..s).step_by(J) {
        let n = (s - t0).min(J);
        let (b, bp, cols, range) = if pass.over_keys {
            // Output t sums M[key, t] over the keys its tile's queries see.
            let cols = std::array::from_fn(|j| (t0 + j.min(n - 1)) * s);
            (pass.b.as_ptr(), 1, cols, 0..shape.seen(t0 + n - 1))
        } else {
            // Output key sums M[key, t] over the queries that see its tile's keys.
            let first = if shape.causal { t0 } else { 0 };
            (pass.b[t0..].as_ptr(), s, std::array::from_fn(|j| j.min(n - 1)), first..s)
        };
        // SAFETY: AVX-512F is the caller's promise. Reads: `a + p·16R` for
        // `p < S`; `b + p·bp + col` is `M[key ≤ p, col]` (columns `< S`) or
        // `M[t0 + j, p]` with `t0 + j < S`: inside `S × S`. Writes: the
        // `16R` values at `c0 + (t0 + j)·ldc` for `t0 + j < S`, in `c`, which
        // is borrowed mutably and so aliases neither.
        unsafe {
            let c = c.as_mut_ptr().add(pass.c0 + t0 * pass.ldc);
            let a = (pass.a.as_ptr(), LANES * R);
            step_tile::<R, J>(a, range, b, bp, cols, pass.alpha, c, pass.ldc, n);
        }
    }
}

/// [`steps`] with `R = dh/16` and the tile width for it (eight steps, four at `dh = 64`).
///
/// # Safety
/// As [`steps`] with `16R = dh`.
#[inline(always)]
unsafe fn steps_for(shape: &HeadShape, pass: &StepPass<'_>, c: &mut [f32]) {
    // SAFETY: the caller's promise; `dh ∈ {16, 32, 48, 64}` (`supported`).
    unsafe {
        match shape.head_dim() {
            16 => steps::<1, 8>(shape, pass, c),
            32 => steps::<2, 8>(shape, pass, c),
            48 => steps::<3, 8>(shape, pass, c),
            _ => steps::<4, 4>(shape, pass, c),
        }
    }
}

/// The query columns of the tile at `t0` (the last repeated past `S`), as offsets
/// `t·stride + off`, and how many are real.
fn query_cols(s: usize, t0: usize, stride: usize, off: usize) -> ([usize; QUERIES], usize) {
    let n = (s - t0).min(QUERIES);
    (std::array::from_fn(|j| (t0 + j.min(n - 1)) * stride + off), n)
}

/// Stores query `t`'s column of `M` (or `dS`): `v[r]` for the registers the
/// tile computed, zeros for the rest, masked to `S` values.
///
/// # Safety
/// AVX-512F; `col` addresses `S` writable values.
#[inline(always)]
unsafe fn store_column<const R: usize>(s: usize, v: [__m512; R], col: *mut f32) {
    // SAFETY: every store is masked to the lanes below `S` in its column.
    unsafe {
        for (r, &v) in v.iter().enumerate() {
            _mm512_mask_storeu_ps(col.add(LANES * r), below(s, LANES * r), v);
        }
        for r in R..s.div_ceil(LANES) {
            _mm512_mask_storeu_ps(col.add(LANES * r), below(s, LANES * r), _mm512_setzero_ps());
        }
    }
}

/// Four queries' scores, softmax and columns of `M`, for `R` registers of keys.
///
/// # Safety
/// AVX-512F; `kt` is the head's transposed keys (`dh × 64`), the tile's query
/// columns `cols` lie in `qkv` with `dh` values each, and `m` is the head's `S × S`.
#[inline(always)]
unsafe fn softmax_tile<const R: usize>(
    shape: &HeadShape,
    kt: &[f32],
    qkv: &[f32],
    (t0, cols, n): (usize, [usize; QUERIES], usize),
    m: &mut [f32],
) {
    let (s, dh) = (shape.steps, shape.head_dim());
    // SAFETY: the caller's promise on `kt` and the columns; the stores write
    // column `t0 + j < S` of `m`, `S` values.
    unsafe {
        let acc = key_sums::<R>(kt.as_ptr(), dh, qkv.as_ptr(), cols);
        let (scale, neg_inf) = (_mm512_set1_ps(shape.scale()), _mm512_set1_ps(f32::NEG_INFINITY));
        for (j, acc) in acc.iter().enumerate().take(n) {
            let seen = shape.seen(t0 + j);
            let mut x = [neg_inf; R];
            let mut max = neg_inf;
            for (r, (x, &a)) in x.iter_mut().zip(acc).enumerate() {
                *x = _mm512_mask_mul_ps(neg_inf, below(seen, LANES * r), a, scale);
                max = _mm512_max_ps(max, *x);
            }
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
            let mut sum = _mm512_setzero_ps();
            for (r, x) in x.iter_mut().enumerate() {
                *x = _mm512_maskz_mov_ps(below(seen, LANES * r), exp(_mm512_sub_ps(*x, max)));
                sum = _mm512_add_ps(sum, *x);
            }
            let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
            for x in x.iter_mut() {
                *x = _mm512_mul_ps(*x, inv);
            }
            store_column::<R>(s, x, m.as_mut_ptr().add((t0 + j) * s));
        }
    }
}

/// Four queries' probability gradients `dM = vᵀ dctx` and, through the
/// softmax, their score gradients `dS = M ⊙ (dM − ⟨dM, M⟩)`, for `R` registers of keys.
///
/// # Safety
/// AVX-512F; `vt` is the head's transposed values (`dh × 64`), the tile's
/// columns `cols` lie in `dc` with `dh` values each, and `m`, `ds` are the head's `S × S`.
#[inline(always)]
unsafe fn softmax_backward_tile<const R: usize>(
    shape: &HeadShape,
    vt: &[f32],
    dc: &[f32],
    (t0, cols, n): (usize, [usize; QUERIES], usize),
    m: &[f32],
    ds: &mut [f32],
) {
    let (s, dh) = (shape.steps, shape.head_dim());
    // SAFETY: the caller's promise on `vt` and the columns; the loads read the
    // lanes below `seen ≤ S` of column `t0 + j < S` of `m`, the stores write that column of `ds`.
    unsafe {
        let acc = key_sums::<R>(vt.as_ptr(), dh, dc.as_ptr(), cols);
        for (j, acc) in acc.iter().enumerate().take(n) {
            let (seen, col) = (shape.seen(t0 + j), (t0 + j) * s);
            let mut p = [_mm512_setzero_ps(); R];
            let mut dot = _mm512_setzero_ps();
            for (r, (p, &g)) in p.iter_mut().zip(acc).enumerate() {
                *p = _mm512_maskz_loadu_ps(below(seen, LANES * r), m.as_ptr().add(col + LANES * r));
                dot = _mm512_mask3_fmadd_ps(g, *p, dot, below(seen, LANES * r));
            }
            let dot = _mm512_set1_ps(_mm512_reduce_add_ps(dot));
            let mut out = [_mm512_setzero_ps(); R];
            for (r, ((o, &p), &g)) in out.iter_mut().zip(&p).zip(acc).enumerate() {
                *o = _mm512_maskz_mul_ps(below(seen, LANES * r), p, _mm512_sub_ps(g, dot));
            }
            store_column::<R>(s, out, ds.as_mut_ptr().add(col));
        }
    }
}

/// Runs `tile::<R>` with `R` the key registers the queries `t0..t0 + n` see.
macro_rules! by_key_registers {
    ($shape:expr, $t0:expr, $n:expr, $tile:ident($($arg:expr),*)) => {{
        match $shape.seen($t0 + $n - 1).div_ceil(LANES) {
            1 => $tile::<1>($($arg),*),
            2 => $tile::<2>($($arg),*),
            3 => $tile::<3>($($arg),*),
            _ => $tile::<4>($($arg),*),
        }
    }};
}

/// [`super::forward`] with AVX-512.
///
/// # Safety
/// The CPU supports AVX-512F; the shape is supported and the slices hold one
/// sample at it (as [`super::forward`] asserts); `packed` holds [`HeadShape::scratch_len`] values.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn forward(
    shape: &HeadShape,
    qkv: &[f32],
    probs: &mut [f32],
    ctx: &mut [f32],
    packed: &mut [f32],
) {
    let (s, d, dh) = (shape.steps, shape.dim, shape.head_dim());
    let (kt, v) = packed.split_at_mut(dh * MAX_STEPS);
    for (h, m) in probs.chunks_exact_mut(s * s).enumerate() {
        // SAFETY: AVX-512F and the slices' sizes are our caller's promise.
        unsafe {
            pack_transposed(qkv, 3 * d, d + h * dh, dh, s, kt);
            pack_rows(qkv, 3 * d, 2 * d + h * dh, dh, s, v);
        }
        for t0 in (0..s).step_by(QUERIES) {
            let (cols, n) = query_cols(s, t0, 3 * d, h * dh);
            // SAFETY: AVX-512F is our caller's promise; `kt` is `dh × 64`, each
            // query column `t·3D + h·dh` has `dh` values in `qkv` (`t < S`), `m` is `S × S`.
            unsafe { by_key_registers!(shape, t0, n, softmax_tile(shape, kt, qkv, (t0, cols, n), m)) };
        }
        let pass = StepPass { a: v, b: m, over_keys: true, alpha: 1.0, c0: h * dh, ldc: d };
        // SAFETY: `v` holds the values `v_t` at `t·dh`, `m` is `S × S`, and
        // `ctx` (`D × S`) holds `dh` values at `h·dh + t·D` for every step.
        unsafe { steps_for(shape, &pass, ctx) };
    }
}

/// [`super::backward`] with AVX-512.
///
/// # Safety
/// As [`forward`], for [`super::backward`]'s slices.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn backward(
    shape: &HeadShape,
    qkv: &[f32],
    probs: &[f32],
    dctx: &[f32],
    dqkv: &mut [f32],
    packed: &mut [f32],
) {
    let (s, d, dh) = (shape.steps, shape.dim, shape.head_dim());
    let (vt, rest) = packed.split_at_mut(dh * MAX_STEPS);
    let (k, rest) = rest.split_at_mut(s * dh);
    let (q, rest) = rest.split_at_mut(s * dh);
    let (dc, ds) = rest.split_at_mut(s * dh);
    let ds = &mut ds[..s * s];
    for (h, m) in probs.chunks_exact(s * s).enumerate() {
        // SAFETY: AVX-512F and the slices' sizes are our caller's promise.
        unsafe {
            pack_transposed(qkv, 3 * d, 2 * d + h * dh, dh, s, vt);
            pack_rows(qkv, 3 * d, d + h * dh, dh, s, k);
            pack_rows(qkv, 3 * d, h * dh, dh, s, q);
            pack_rows(dctx, d, h * dh, dh, s, dc);
        }
        for t0 in (0..s).step_by(QUERIES) {
            let (cols, n) = query_cols(s, t0, dh, 0);
            // SAFETY: AVX-512F is our caller's promise; `vt` is `dh × 64`, each
            // row `t·dh` has `dh` values in `dc` (`t < S`), `m` and `ds` are `S × S`.
            unsafe {
                by_key_registers!(shape, t0, n, softmax_backward_tile(shape, vt, dc, (t0, cols, n), m, ds))
            };
        }
        let scale = shape.scale();
        let ds = &*ds;
        let (dq, dk, dv) = (h * dh, d + h * dh, 2 * d + h * dh);
        let passes = [
            // dq_t = Σ_key dS[key, t] k_key / √dh.
            StepPass { a: k, b: ds, over_keys: true, alpha: scale, c0: dq, ldc: 3 * d },
            // dk_key = Σ_t dS[key, t] q_t / √dh.
            StepPass { a: q, b: ds, over_keys: false, alpha: scale, c0: dk, ldc: 3 * d },
            // dv_key = Σ_t M[key, t] dctx_t.
            StepPass { a: dc, b: m, over_keys: false, alpha: 1.0, c0: dv, ldc: 3 * d },
        ];
        for pass in &passes {
            // SAFETY: the packed rows hold each step's `dh` values at `t·dh`, `ds` and `m` are `S × S`, and
            // `dqkv` (`3D × S`) holds `dh` values at `c0 + t·3D` for every step.
            unsafe { steps_for(shape, pass, dqkv) };
        }
    }
}
