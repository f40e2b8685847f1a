//! The sizes of a 2-D pooling.

/// Sizes of a 2-D pooling, computed by `network!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Channels `C` (pooling keeps them).
    pub channels: usize,
    /// Input height `H`.
    pub height: usize,
    /// Input width `W`.
    pub width: usize,
    /// Window size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]` (PyTorch's default is the kernel size).
    pub stride: [usize; 2],
    /// Output height `floor((H − kh) / sh) + 1`.
    pub out_height: usize,
    /// Output width `floor((W − kw) / sw) + 1`.
    pub out_width: usize,
}

impl PoolGeometry {
    /// The geometry of a pooling in floor mode without padding.
    ///
    /// Panics (at compile time in a `const` context) if a kernel or stride is 0
    /// or the window is larger than the input.
    pub const fn new(
        channels: usize,
        height: usize,
        width: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> Self {
        assert!(
            kernel[0] >= 1 && kernel[1] >= 1 && stride[0] >= 1 && stride[1] >= 1,
            "kernel and stride must be at least 1"
        );
        assert!(kernel[0] <= height && kernel[1] <= width, "the pooling window is larger than the input");
        PoolGeometry {
            channels,
            height,
            width,
            kernel,
            stride,
            out_height: (height - kernel[0]) / stride[0] + 1,
            out_width: (width - kernel[1]) / stride[1] + 1,
        }
    }

    /// Features per input sample, `channels·height·width`: the `IN` parameter.
    pub const fn in_features(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Features per output sample, `channels·out_height·out_width`: the `OUT` parameter.
    pub const fn out_features(&self) -> usize {
        self.channels * self.out_height * self.out_width
    }

    /// The index, within a channel plane, of the top-left input of output `(oh, ow)`'s window.
    #[inline]
    pub(crate) fn window_start(&self, oh: usize, ow: usize) -> usize {
        oh * self.stride[0] * self.width + ow * self.stride[1]
    }
}
