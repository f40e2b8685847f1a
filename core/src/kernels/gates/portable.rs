//! The gate nonlinearities in plain Rust, for every float type: what the
//! portable level runs and what f64 layers call.

use crate::float::Float;

/// `v = 1/(1 + e^−v)`: branch-free, 0 (not NaN) where `e^−v` overflows.
pub(crate) fn sigmoid<T: Float>(v: &mut [T]) {
    v.iter_mut().for_each(|x| *x = T::one() / (T::one() + (-*x).exp()));
}

/// `v = tanh(v)`.
pub(crate) fn tanh<T: Float>(v: &mut [T]) {
    v.iter_mut().for_each(|x| *x = x.tanh());
}

/// [`super::lstm_cell_backward`] for every float type (lengths checked by the
/// caller): plain element-wise arithmetic, which the vector levels compile
/// wider, in the same order (no operation fused), so every level gives the same bits.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_cell_backward<T: Float>(
    gates: &[T],
    c_prev: &[T],
    tanh_c: &[T],
    dy: &[T],
    dh_next: &[T],
    dc: &mut [T],
    dz: &mut [T],
) {
    let n = dc.len();
    let (i, gates) = gates.split_at(n);
    let (f, gates) = gates.split_at(n);
    let (g, o) = gates.split_at(n);
    let (di, dz) = dz.split_at_mut(n);
    let (df, dz) = dz.split_at_mut(n);
    let (dg, d_o) = dz.split_at_mut(n);
    let (o, d_o, c_prev, tanh_c, dy, dh_next) =
        (&o[..n], &mut d_o[..n], &c_prev[..n], &tanh_c[..n], &dy[..n], &dh_next[..n]);
    let one = T::one();
    for j in 0..n {
        let dh = dy[j] + dh_next[j];
        let dc_t = dc[j] + dh * o[j] * (one - tanh_c[j] * tanh_c[j]);
        di[j] = dc_t * g[j] * i[j] * (one - i[j]);
        df[j] = dc_t * c_prev[j] * f[j] * (one - f[j]);
        dg[j] = dc_t * i[j] * (one - g[j] * g[j]);
        d_o[j] = dh * tanh_c[j] * o[j] * (one - o[j]);
        dc[j] = dc_t * f[j];
    }
}
