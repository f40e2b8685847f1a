//! The attention tiles in plain Rust (the portable level), and the softmax's
//! backward, which every level runs.

use super::{Tile, COLS};

/// [`Tile::run`] in plain Rust; the caller checked the bounds (indexing checks them again).
pub(super) fn tile(t: &Tile, a: &[f32], b: &[f32], c: &mut [f32]) {
    let mut acc = [[0.0f32; super::ROWS]; COLS];
    for p in t.p.clone() {
        let ap = &a[t.a + p * t.lda..][..t.rows];
        for (j, acc) in acc.iter_mut().enumerate() {
            let bv = b[t.b + p * t.bp + j * t.bj];
            acc.iter_mut().zip(ap).for_each(|(s, &x)| *s += x * bv);
        }
    }
    for (j, acc) in acc.iter().enumerate() {
        let out = &mut c[t.c + j * t.ldc..][..t.rows];
        out.iter_mut().zip(acc).for_each(|(o, &s)| *o = t.alpha * s);
    }
}

/// `g[..seen] = p ⊙ (g − ⟨g, p⟩)` in place, the rest zeroed: the gradient of
/// one query's scores from that of its probabilities `p`.
pub(super) fn softmax_prefix_backward(p: &[f32], g: &mut [f32], seen: usize) {
    let (live, masked) = g.split_at_mut(seen);
    let p = &p[..seen];
    let mut lanes = [0.0f32; 16];
    let ((gc, gt), (pc, pt)) = (live.as_chunks::<16>(), p.as_chunks::<16>());
    for (g, p) in gc.iter().zip(pc) {
        for l in 0..16 {
            lanes[l] += g[l] * p[l];
        }
    }
    let tail = gt.iter().zip(pt).fold(0.0f32, |s, (&g, &p)| s + g * p);
    let dot = lanes.iter().sum::<f32>() + tail;
    live.iter_mut().zip(p).for_each(|(g, &p)| *g = p * (*g - dot));
    masked.fill(0.0);
}
