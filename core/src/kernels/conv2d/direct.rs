//! The convolution straight from the input, without im2col (AVX-512 only):
//! [`Direct`] exists only where it runs, and [`Padded`] says what it reads.

use super::Isa;
use crate::geometry::Conv2dGeometry;

/// The direct convolution kernels of one layer: they read the input (or a
/// zero-padded copy of one sample) instead of its im2col columns. Built only
/// at the AVX-512 level and for stride 1 along the width, where consecutive
/// outputs read consecutive inputs, so each tap of a block of outputs is one
/// contiguous load from an input row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Direct {
    g: Conv2dGeometry,
    pad: Padded,
}

impl Direct {
    /// The kernels for `g` at level `isa`, or `None` where they do not apply
    /// (or this CPU cannot run `isa`).
    pub(crate) fn new(isa: Isa, g: &Conv2dGeometry) -> Option<Direct> {
        match isa {
            Isa::Avx512 if cfg!(target_arch = "x86_64") && isa.supported() && g.stride[1] == 1 => {
                Some(Direct { g: *g, pad: Padded::of(g) })
            }
            _ => None,
        }
    }

    /// The scratch one sample needs: its padded copy, or nothing when the layer does not pad.
    pub(crate) fn scratch_len(&self) -> usize {
        if self.pad.is_input(&self.g) {
            0
        } else {
            self.pad.len(&self.g)
        }
    }

    /// `y[o][oh][ow] = bias[o] + Σ_k w[o·patch + k] · x[..]` for one sample `x`
    /// (`w` PyTorch's `[COUT, PATCH]`), with `scratch` ([`Direct::scratch_len`] values).
    pub(crate) fn forward(
        &self,
        w: &[f32],
        bias: Option<&[f32]>,
        x: &[f32],
        scratch: &mut [f32],
        y: &mut [f32],
    ) {
        let source = self.pad.source(&self.g, x, scratch);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Direct::new` checked that this CPU has AVX-512 (F, VL, AVX2, FMA) and
        // that the stride is 1 along the width; the kernel asserts the lengths.
        unsafe {
            super::avx512::direct_forward(&self.g, w, bias, source, y)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (w, bias, source, y);
    }

    /// The weight gradient `dw[o·patch + k] += Σ_p dy[o][p] · x[..]` and bias
    /// gradient `db[o] += Σ_p dy[o][p]` of one sample, scratch as in [`Direct::forward`].
    pub(crate) fn weight_grad(
        &self,
        x: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        db: Option<&mut [f32]>,
        scratch: &mut [f32],
    ) {
        let source = self.pad.source(&self.g, x, scratch);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `forward`.
        unsafe {
            super::avx512::direct_weight_grad(&self.g, source, dy, dw, db)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (source, dy, dw, db);
    }
}

/// An input sample as the direct kernels read it: every tap of every output
/// lies inside (`rows × cols` per channel, rows `cols` apart), either the input
/// itself (no padding) or a zero-padded copy of it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Padded {
    rows: usize,
    cols: usize,
}

impl Padded {
    /// The extent the taps of `g` reach, padding included.
    pub(super) fn of(g: &Conv2dGeometry) -> Self {
        Padded {
            rows: (g.out_height - 1) * g.stride[0] + (g.kernel[0] - 1) * g.dilation[0] + 1,
            cols: g.out_width - 1 + (g.kernel[1] - 1) * g.dilation[1] + 1,
        }
    }

    /// Whether the input itself can be read (no padding, so the taps stay inside it).
    pub(super) fn is_input(&self, g: &Conv2dGeometry) -> bool {
        g.padding == [0, 0]
    }

    /// What the kernels read for sample `x`: the sample itself when the layer
    /// does not pad, else its padded copy, written into `scratch` (`len` values).
    /// The flag says which (the `input` argument of the kernels).
    pub(super) fn source<'a>(
        &self,
        g: &Conv2dGeometry,
        x: &'a [f32],
        scratch: &'a mut [f32],
    ) -> (&'a [f32], bool) {
        if self.is_input(g) {
            return (x, true);
        }
        self.fill(g, x, scratch);
        (scratch, false)
    }

    /// Values of the padded copy of one sample.
    pub(super) fn len(&self, g: &Conv2dGeometry) -> usize {
        g.in_channels * self.rows * self.cols
    }

    /// Copies sample `x` into `out` (`len` values) with its zero border.
    pub(super) fn fill(&self, g: &Conv2dGeometry, x: &[f32], out: &mut [f32]) {
        let [ph, pw] = g.padding;
        out.fill(0.0);
        let (h, w) = (g.height.min(self.rows.saturating_sub(ph)), g.width.min(self.cols.saturating_sub(pw)));
        for (xc, oc) in x.chunks_exact(g.height * g.width).zip(out.chunks_exact_mut(self.rows * self.cols)) {
            for r in 0..h {
                oc[(r + ph) * self.cols + pw..][..w].copy_from_slice(&xc[r * g.width..][..w]);
            }
        }
    }

    /// (row stride, channel stride) of what the kernels read.
    pub(super) fn strides(&self, g: &Conv2dGeometry, input: bool) -> (usize, usize) {
        if input {
            (g.width, g.height * g.width)
        } else {
            (self.cols, self.rows * self.cols)
        }
    }
}
