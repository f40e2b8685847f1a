//! Layer normalisation over columns (`layers::LayerNorm`, and at every step
//! of a sequence through `layers::PerStep`): each column of `n` values is
//! normalised with its mean and biased variance, then scaled by `γ` and
//! shifted by `β`; backward, the input gradient per column and the sums of
//! `γ`'s and `β`'s gradients over the columns.
//!
//! The portable version ([`portable`]) is generic, so f64 layers run it too.
//! Every level takes the same two passes per column (the mean, then the
//! variance around it) and sums the columns' parameter gradients in column
//! order; levels differ only in the order of the sums inside a column.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod portable;
#[cfg(test)]
mod tests;

use super::Isa;
use crate::float::Float;

/// What a training pass keeps for the backward pass: `x̂ = (x − mean)/σ`
/// (like `x`) and `1/σ = 1/sqrt(var + eps)` (one per column).
pub(crate) struct Keep<'a, T> {
    /// `x̂`, laid out like the input.
    pub(crate) x_hat: &'a mut [T],
    /// `1/σ` per column.
    pub(crate) inv_std: &'a mut [T],
}

/// `y = x̂ ⊙ γ + β` for every column of `x` (`γ.len()` values each), with
/// `x̂ = (x − mean)/sqrt(var + eps)`; `keep` receives `x̂` and `1/σ`. At level
/// `isa` for f32, portably for f64.
///
/// Panics if the lengths disagree (`β` like `γ`, non-empty; `x` whole columns;
/// `y` and `keep.x_hat` like `x`; one `keep.inv_std` per column) or the CPU lacks `isa`.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub(crate) fn forward<T: Float>(
    isa: Isa,
    x: &[T],
    gamma: &[T],
    beta: &[T],
    eps: T,
    y: &mut [T],
    keep: Option<Keep<'_, T>>,
) {
    let n = gamma.len();
    assert!(
        n > 0 && beta.len() == n && x.len().is_multiple_of(n),
        "layer_norm: {} values, {n} features",
        x.len()
    );
    assert_eq!(y.len(), x.len(), "layer_norm: y is not shaped like x");
    if let Some(k) = &keep {
        assert!(
            k.x_hat.len() == x.len() && k.inv_std.len() == x.len() / n,
            "layer_norm: what to keep is misshaped"
        );
    }
    let f32s = (T::f32s(x), T::f32s(gamma), T::f32s(beta), T::f32s(&[eps]).map(|e| e[0]));
    let (Some(x32), Some(g32), Some(b32), Some(eps32)) = f32s else {
        return portable::forward(x, gamma, beta, eps, y, keep);
    };
    let Some(y32) = T::f32s_mut(y) else { return };
    let keep32 = match keep {
        Some(Keep { x_hat, inv_std }) => match (T::f32s_mut(x_hat), T::f32s_mut(inv_std)) {
            (Some(x_hat), Some(inv_std)) => Some(Keep { x_hat, inv_std }),
            _ => return,
        },
        None => None,
    };
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted the level's CPU features (AVX-512F among them);
        // the kernel reaches memory only through the slices, whose lengths agree (asserted).
        Isa::Avx512 => unsafe { avx512::forward(x32, g32, b32, eps32, y32, keep32) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA; the lengths agree (asserted).
        Isa::Avx2 => unsafe { avx2::forward(x32, g32, b32, eps32, y32, keep32) },
        _ => portable::forward(x32, g32, b32, eps32, y32, keep32),
    }
}

/// The backward pass of [`forward`] from the output gradient `dy`, with the
/// kept `x̂` and `1/σ`: `dγ = Σ dy ⊙ x̂` and `dβ = Σ dy` over the columns
/// (overwritten), and, when asked for, per column with `g = dy ⊙ γ`:
/// `dx = (g − mean(g) − x̂·mean(g ⊙ x̂))/σ`.
///
/// Panics if the lengths disagree (as for [`forward`]) or the CPU lacks `isa`.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub(crate) fn backward<T: Float>(
    isa: Isa,
    dy: &[T],
    x_hat: &[T],
    inv_std: &[T],
    gamma: &[T],
    dgamma: &mut [T],
    dbeta: &mut [T],
    dx: Option<&mut [T]>,
) {
    let n = gamma.len();
    assert!(n > 0 && dy.len().is_multiple_of(n), "layer_norm backward: {} values, {n} features", dy.len());
    assert!(
        x_hat.len() == dy.len() && inv_std.len() == dy.len() / n && dgamma.len() == n && dbeta.len() == n,
        "layer_norm backward: misshaped operands"
    );
    if let Some(dx) = &dx {
        assert_eq!(dx.len(), dy.len(), "layer_norm backward: dx is not shaped like dy");
    }
    let f32s = (T::f32s(dy), T::f32s(x_hat), T::f32s(inv_std), T::f32s(gamma));
    let (Some(dy32), Some(h32), Some(s32), Some(g32)) = f32s else {
        return portable::backward(dy, x_hat, inv_std, gamma, dgamma, dbeta, dx);
    };
    let (Some(dg32), Some(db32)) = (T::f32s_mut(dgamma), T::f32s_mut(dbeta)) else { return };
    let dx32 = match dx {
        Some(dx) => match T::f32s_mut(dx) {
            Some(dx) => Some(dx),
            None => return,
        },
        None => None,
    };
    match isa.checked() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `checked` asserted the level's CPU features (AVX-512F among them);
        // the kernel reaches memory only through the slices, whose lengths agree (asserted).
        Isa::Avx512 => unsafe { avx512::backward(dy32, h32, s32, g32, dg32, db32, dx32) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: the CPU has AVX2 and FMA; the lengths agree (asserted).
        Isa::Avx2 => unsafe { avx2::backward(dy32, h32, s32, g32, dg32, db32, dx32) },
        _ => portable::backward(dy32, h32, s32, g32, dg32, db32, dx32),
    }
}
