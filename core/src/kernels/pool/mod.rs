//! 2×2 max pooling with stride 2 over one channel plane, alone or fused with
//! the ReLU before it, and its backward pass.
//!
//! Each entry point takes the [`Isa`] to run at and f32 slices; the portable
//! loops ([`portable`]) are generic, so layers computing in f64 call them
//! directly. Pooling only compares and copies, so every level gives the same
//! bits.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod portable;
#[cfg(test)]
mod tests;

use super::Isa;

/// 2×2 max pooling with stride 2 of one channel plane `xp` (rows `w` wide)
/// into `y` (`out_w` wide), recording each output's window position (0..4,
/// row-major) in `arg` when given. With `relu` (only when the windows tile the
/// plane), the plane first goes through a ReLU, written to `relu`, and the
/// pooling reads those values: both layers in one pass over the input.
pub(crate) fn max_pool_2x2(
    isa: Isa,
    xp: &[f32],
    w: usize,
    y: &mut [f32],
    out_w: usize,
    arg: Option<&mut [u32]>,
    relu: Option<&mut [f32]>,
) {
    let rows = xp.len() / (2 * w).max(1);
    assert!(
        isa.supported()
            && 2 * out_w <= w
            && y.len() >= rows * out_w
            && arg.as_ref().is_none_or(|a| a.len() >= rows * out_w)
            && relu.as_ref().is_none_or(|r| r.len() >= 2 * rows * w),
        "pool::max_pool_2x2: operands of the wrong length, or a level this CPU lacks"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa.supported()` checked the level's CPU features; lengths asserted above.
        Isa::Avx512 => unsafe { avx512::max_pool_2x2(xp, w, y, out_w, arg, relu) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            let (mut arg, mut relu) = (arg, relu);
            // SAFETY: as above.
            let done =
                unsafe { avx2::max_pool_2x2(xp, w, y, out_w, arg.as_deref_mut(), relu.as_deref_mut()) };
            portable::max_pool_2x2_from(done, xp, w, y, out_w, arg, relu)
        }
        _ => portable::max_pool_2x2(xp, w, y, out_w, arg, relu),
    }
}

/// The backward pass of [`max_pool_2x2`] when the windows tile the plane:
/// every input gets its window's gradient `dy` if it was the maximum (`arg`),
/// else zero. With `relu = (y, dx)`, the pooling's input came from a ReLU: its
/// input gradient goes on into `dx`, zero where the ReLU's input was not
/// positive, which at a window's maximum is where the pooled `y` is not.
pub(crate) fn max_pool_2x2_backward(
    isa: Isa,
    dxp: &mut [f32],
    w: usize,
    dy: &[f32],
    arg: &[u32],
    out_w: usize,
    relu: Option<(&[f32], &mut [f32])>,
) {
    let rows = dxp.len() / (2 * w).max(1);
    assert!(
        isa.supported()
            && 2 * out_w <= w
            && dy.len() >= rows * out_w
            && arg.len() >= rows * out_w
            && relu.as_ref().is_none_or(|(y, dx)| y.len() >= rows * out_w && dx.len() >= 2 * rows * w),
        "pool::max_pool_2x2_backward: operands of the wrong length, or a level this CPU lacks"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa.supported()` checked the level's CPU features; lengths asserted above.
        Isa::Avx512 => unsafe { avx512::max_pool_2x2_backward(dxp, w, dy, arg, out_w, relu) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            let mut relu = relu;
            let relu_now = relu.as_mut().map(|(y, dx)| (*y, &mut **dx));
            // SAFETY: as above.
            let done = unsafe { avx2::max_pool_2x2_backward(dxp, w, dy, arg, out_w, relu_now) };
            portable::max_pool_2x2_backward_from(done, dxp, w, dy, arg, out_w, relu)
        }
        _ => portable::max_pool_2x2_backward(dxp, w, dy, arg, out_w, relu),
    }
}
