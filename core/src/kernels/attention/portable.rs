//! The attention core in plain Rust (the portable level): each head's sums
//! in the definition's order, straight from the layer's layouts.

use super::HeadShape;
use crate::kernels::softmax::portable::softmax;

/// Step `t`'s `dh` values of head `h` at offset `part` of a column of `stride`.
fn at(x: &[f32], stride: usize, part: usize, t: usize, dh: usize) -> &[f32] {
    &x[t * stride + part..][..dh]
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(&a, &b)| a * b).sum()
}

/// `out += alpha·x`.
fn axpy(out: &mut [f32], alpha: f32, x: &[f32]) {
    out.iter_mut().zip(x).for_each(|(o, &x)| *o += alpha * x);
}

/// [`super::forward`] at the portable level.
pub(super) fn forward(shape: &HeadShape, qkv: &[f32], probs: &mut [f32], ctx: &mut [f32]) {
    let (s, d, dh, scale) = (shape.steps, shape.dim, shape.head_dim(), shape.scale());
    for (h, m) in probs.chunks_exact_mut(s * s).enumerate() {
        let (q, k, v) = (h * dh, d + h * dh, 2 * d + h * dh);
        for (t, column) in m.chunks_exact_mut(s).enumerate() {
            let (live, masked) = column.split_at_mut(shape.seen(t));
            let query = at(qkv, 3 * d, q, t, dh);
            for (key, x) in live.iter_mut().enumerate() {
                *x = scale * dot(at(qkv, 3 * d, k, key, dh), query);
            }
            softmax(live);
            masked.fill(0.0);
            let out = &mut ctx[t * d + h * dh..][..dh];
            out.fill(0.0);
            for (key, &p) in live.iter().enumerate() {
                axpy(out, p, at(qkv, 3 * d, v, key, dh));
            }
        }
    }
}

/// [`super::backward`] at the portable level, each head's score gradients in `ds` (`S × S`).
pub(super) fn backward(
    shape: &HeadShape,
    qkv: &[f32],
    probs: &[f32],
    dctx: &[f32],
    dqkv: &mut [f32],
    ds: &mut [f32],
) {
    let (s, d, dh, scale) = (shape.steps, shape.dim, shape.head_dim(), shape.scale());
    for (h, m) in probs.chunks_exact(s * s).enumerate() {
        let (q, k, v) = (h * dh, d + h * dh, 2 * d + h * dh);
        // dS = M ⊙ (dM − ⟨dM, M⟩) per query, with dM[key, t] = v_key · dctx_t.
        for (t, (p, g)) in m.chunks_exact(s).zip(ds.chunks_exact_mut(s)).enumerate() {
            let seen = shape.seen(t);
            let dc = at(dctx, d, h * dh, t, dh);
            for (key, g) in g[..seen].iter_mut().enumerate() {
                *g = dot(at(qkv, 3 * d, v, key, dh), dc);
            }
            let inner = dot(&g[..seen], &p[..seen]);
            g[..seen].iter_mut().zip(p).for_each(|(g, &p)| *g = p * (*g - inner));
            g[seen..].fill(0.0);
        }
        for t in 0..s {
            for part in [q, k, v] {
                dqkv[t * 3 * d + part..][..dh].fill(0.0);
            }
        }
        for t in 0..s {
            let dc = at(dctx, d, h * dh, t, dh);
            for key in 0..shape.seen(t) {
                let (g, p) = (ds[t * s + key], m[t * s + key]);
                // dq_t += dS[key, t] k_key / √dh; dk_key += dS[key, t] q_t / √dh; dv_key += M[key, t] dctx_t.
                let kk = at(qkv, 3 * d, k, key, dh);
                axpy(&mut dqkv[t * 3 * d + q..][..dh], scale * g, kk);
                let qt = at(qkv, 3 * d, q, t, dh);
                axpy(&mut dqkv[key * 3 * d + k..][..dh], scale * g, qt);
                axpy(&mut dqkv[key * 3 * d + v..][..dh], p, dc);
            }
        }
    }
}
