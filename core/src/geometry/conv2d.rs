//! The sizes of a 2-D convolution and the walk over its kernel taps.

/// Sizes of a 2-D convolution, computed by `network!`.
///
/// Padding is given for the top and left edges; the bottom and right padding is
/// whatever `out_height`/`out_width` imply (positions past the input read as
/// zero). That lets `padding = same` pad asymmetrically for even kernels, as
/// PyTorch does (one more row/column at the bottom/right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Input channels `CIN`.
    pub in_channels: usize,
    /// Input height `H`.
    pub height: usize,
    /// Input width `W`.
    pub width: usize,
    /// Output channels (filters) `COUT`.
    pub out_channels: usize,
    /// Kernel size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`, at least 1.
    pub stride: [usize; 2],
    /// Zero padding at the top and at the left, `[ph, pw]`.
    pub padding: [usize; 2],
    /// Dilation `[dh, dw]`, at least 1 (1 is an ordinary convolution).
    pub dilation: [usize; 2],
    /// Output height `OH`.
    pub out_height: usize,
    /// Output width `OW`.
    pub out_width: usize,
}

/// `floor((len + 2·pad − dilation·(kernel − 1) − 1) / stride) + 1`, PyTorch's output size.
const fn symmetric_out(len: usize, kernel: usize, stride: usize, pad: usize, dilation: usize) -> usize {
    assert!(kernel >= 1 && stride >= 1 && dilation >= 1, "kernel, stride and dilation must be at least 1");
    let span = dilation * (kernel - 1) + 1;
    assert!(len + 2 * pad >= span, "the dilated kernel is larger than the padded input");
    (len + 2 * pad - span) / stride + 1
}

impl Conv2dGeometry {
    /// The geometry for the same padding `padding` on both sides of each axis,
    /// with PyTorch's output size `floor((H + 2p − d(k−1) − 1) / s) + 1` (and
    /// likewise for the width).
    ///
    /// Panics (at compile time in a `const` context) if a kernel, stride or
    /// dilation is 0, or if the dilated kernel does not fit the padded input.
    #[allow(clippy::too_many_arguments)]
    pub const fn symmetric(
        in_channels: usize,
        height: usize,
        width: usize,
        out_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
    ) -> Self {
        Conv2dGeometry {
            in_channels,
            height,
            width,
            out_channels,
            kernel,
            stride,
            padding,
            dilation,
            out_height: symmetric_out(height, kernel[0], stride[0], padding[0], dilation[0]),
            out_width: symmetric_out(width, kernel[1], stride[1], padding[1], dilation[1]),
        }
    }

    /// The length of one unfolded patch, `in_channels·kh·kw`: the `PATCH` parameter.
    pub const fn patch(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// Features per input sample, `in_channels·height·width`: the `IN` parameter.
    pub const fn in_features(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    /// Features per output sample, `out_channels·out_height·out_width`: the `OUT` parameter.
    pub const fn out_features(&self) -> usize {
        self.out_channels * self.out_height * self.out_width
    }

    /// Output positions per channel, `out_height·out_width`.
    pub(crate) const fn out_spatial(&self) -> usize {
        self.out_height * self.out_width
    }

    /// Whether im2col is the identity (a 1×1 kernel, stride 1, no padding):
    /// the input sample, viewed as `(H·W) × CIN`, already is the column matrix.
    pub(crate) const fn is_pointwise(&self) -> bool {
        self.kernel[0] == 1
            && self.kernel[1] == 1
            && self.stride[0] == 1
            && self.stride[1] == 1
            && self.padding[0] == 0
            && self.padding[1] == 0
            && self.out_height == self.height
            && self.out_width == self.width
    }
}

/// The output positions `o` along one axis whose input index `o·stride + offset`
/// lies in `0..len_in`, as a range `lo..hi` clamped to `0..len_out`.
#[inline]
fn valid_range(offset: isize, stride: usize, len_in: usize, len_out: usize) -> (usize, usize) {
    let s = stride as isize;
    // o·s + offset ≥ 0  ⇔  o ≥ ⌈−offset / s⌉
    let lo = if offset < 0 { (-offset + s - 1) / s } else { 0 };
    // o·s + offset < len_in  ⇔  o < ⌈(len_in − offset) / s⌉
    let room = len_in as isize - offset;
    let hi = if room > 0 { (room + s - 1) / s } else { 0 };
    let lo = (lo as usize).min(len_out);
    (lo, (hi as usize).clamp(lo, len_out))
}

/// Calls `f(k, row_offset, oh_range, col_offset, ow_range)` for every kernel
/// position `k = (c·kh + i)·kw + j` of one input channel: the offsets map an
/// output position to its input position (`ih = oh·sh + row_offset`), the ranges
/// are the output rows and columns whose input position is inside the image.
#[inline]
pub(crate) fn for_each_tap(
    g: &Conv2dGeometry,
    mut f: impl FnMut(usize, isize, (usize, usize), isize, (usize, usize)),
) {
    let [kh, kw] = g.kernel;
    let mut k = 0;
    for i in 0..kh {
        let row_off = (i * g.dilation[0]) as isize - g.padding[0] as isize;
        let rows = valid_range(row_off, g.stride[0], g.height, g.out_height);
        for j in 0..kw {
            let col_off = (j * g.dilation[1]) as isize - g.padding[1] as isize;
            let cols = valid_range(col_off, g.stride[1], g.width, g.out_width);
            f(k, row_off, rows, col_off, cols);
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_follow_pytorch() {
        let g = Conv2dGeometry::symmetric(1, 28, 28, 8, [3, 3], [1, 1], [0, 0], [1, 1]);
        assert_eq!((g.out_height, g.out_width, g.patch()), (26, 26, 9));
        assert_eq!((g.in_features(), g.out_features()), (784, 8 * 26 * 26));
        let g = Conv2dGeometry::symmetric(3, 32, 32, 16, [5, 5], [2, 2], [2, 2], [1, 1]);
        assert_eq!((g.out_height, g.out_width, g.patch()), (16, 16, 75));
        let g = Conv2dGeometry::symmetric(2, 10, 7, 4, [3, 2], [3, 1], [1, 0], [2, 3]);
        // H: (10 + 2 − 4 − 1) / 3 + 1 = 3; W: (7 − 3 − 1) / 1 + 1 = 4
        assert_eq!((g.out_height, g.out_width, g.patch()), (3, 4, 12));
        // Kernel equal to the padded input: a single output.
        const G: Conv2dGeometry = Conv2dGeometry::symmetric(1, 4, 4, 1, [6, 6], [1, 1], [1, 1], [1, 1]);
        assert_eq!((G.out_height, G.out_width), (1, 1));
    }
}
