//! Layer normalisation in plain Rust, one value at a time, generic (f64
//! layers run it); the vector levels follow the same steps.

use super::Keep;
use crate::float::Float;

/// [`super::forward`] at the portable level (lengths checked by the caller).
pub(crate) fn forward<T: Float>(
    x: &[T],
    gamma: &[T],
    beta: &[T],
    eps: T,
    y: &mut [T],
    mut keep: Option<Keep<'_, T>>,
) {
    let n = gamma.len();
    let inv_n = T::one() / T::cast(n as f64);
    for (b, (xc, yc)) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)).enumerate() {
        let mean = xc.iter().fold(T::zero(), |s, &v| s + v) * inv_n;
        let var = xc.iter().fold(T::zero(), |s, &v| s + (v - mean) * (v - mean)) * inv_n;
        let inv_std = T::one() / (var + eps).sqrt();
        let values = xc.iter().zip(gamma).zip(beta);
        match keep.as_mut() {
            Some(k) => {
                k.inv_std[b] = inv_std;
                let hc = &mut k.x_hat[b * n..(b + 1) * n];
                for ((yi, hi), ((&xi, &g), &bt)) in yc.iter_mut().zip(hc).zip(values) {
                    let h = (xi - mean) * inv_std;
                    *hi = h;
                    *yi = g * h + bt;
                }
            }
            None => {
                for (yi, ((&xi, &g), &bt)) in yc.iter_mut().zip(values) {
                    *yi = g * ((xi - mean) * inv_std) + bt;
                }
            }
        }
    }
}

/// [`super::backward`] at the portable level (lengths checked by the caller).
pub(crate) fn backward<T: Float>(
    dy: &[T],
    x_hat: &[T],
    inv_std: &[T],
    gamma: &[T],
    dgamma: &mut [T],
    dbeta: &mut [T],
    mut dx: Option<&mut [T]>,
) {
    let n = gamma.len();
    dgamma.fill(T::zero());
    dbeta.fill(T::zero());
    let inv_n = T::one() / T::cast(n as f64);
    for (b, (gc, hc)) in dy.chunks_exact(n).zip(x_hat.chunks_exact(n)).enumerate() {
        let (mut sum_g, mut sum_gh) = (T::zero(), T::zero());
        for ((((&d, &h), &w), dwi), dbi) in
            gc.iter().zip(hc).zip(gamma).zip(dgamma.iter_mut()).zip(dbeta.iter_mut())
        {
            *dwi += d * h;
            *dbi += d;
            let g = d * w;
            sum_g += g;
            sum_gh += g * h;
        }
        if let Some(dx) = dx.as_deref_mut() {
            let (mean_g, mean_gh) = (sum_g * inv_n, sum_gh * inv_n);
            let dc = &mut dx[b * n..(b + 1) * n];
            for (((di, &d), &h), &w) in dc.iter_mut().zip(gc).zip(hc).zip(gamma) {
                *di = inv_std[b] * (d * w - mean_g - h * mean_gh);
            }
        }
    }
}
