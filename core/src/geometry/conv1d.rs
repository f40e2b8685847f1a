//! The sizes of a 1-D convolution over the steps of a `[steps, features]` sample.

use crate::error::{Error, Result};

/// Sizes of a 1-D convolution over steps, computed by `network!`: PyTorch's
/// `Conv1d` (symmetric zero padding) applied to a `[steps, features]` sample
/// with the features as channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dGeometry {
    /// Input steps `STEPS`.
    pub steps: usize,
    /// Kernel length `K`, in taps.
    pub kernel: usize,
    /// Stride between output steps, at least 1.
    pub stride: usize,
    /// Zero steps added before the first step and after the last.
    pub padding: usize,
    /// Steps between two taps of the kernel, at least 1 (1 is an ordinary convolution).
    pub dilation: usize,
    /// Output steps `OSTEPS = floor((steps + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1`.
    pub out_steps: usize,
}

impl Conv1dGeometry {
    /// The geometry of a convolution over `steps` steps, with PyTorch's output
    /// length `floor((steps + 2p − d(k−1) − 1) / s) + 1`.
    ///
    /// Errors: [`Error::InvalidConfig`] if `steps`, `kernel`, `stride` or
    /// `dilation` is 0, if the dilated kernel is longer than the padded steps,
    /// or if a size overflows.
    pub fn new(steps: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> Result<Self> {
        let invalid = |what: String| Err(Error::InvalidConfig(format!("Conv1d: {what}")));
        if steps == 0 || kernel == 0 || stride == 0 || dilation == 0 {
            return invalid(format!(
                "steps, kernel, stride and dilation must be at least 1, got steps = {steps}, \
                 kernel = {kernel}, stride = {stride}, dilation = {dilation}"
            ));
        }
        let padded = padding.checked_mul(2).and_then(|p| p.checked_add(steps));
        let span = dilation.checked_mul(kernel - 1).and_then(|s| s.checked_add(1));
        let (Some(padded), Some(span)) = (padded, span) else {
            return invalid(format!(
                "the sizes overflow (steps = {steps}, kernel = {kernel}, padding = {padding}, dilation = {dilation})"
            ));
        };
        if span > padded {
            return invalid(format!(
                "the kernel spans {span} steps (kernel = {kernel}, dilation = {dilation}), longer than the \
                 {padded} padded steps (steps = {steps}, padding = {padding})"
            ));
        }
        let out_steps = (padded - span) / stride + 1;
        Ok(Conv1dGeometry { steps, kernel, stride, padding, dilation, out_steps })
    }

    /// The input step that tap `k` of output step `t` reads, or `None` where it
    /// falls in the padding. `t < out_steps` and `k < kernel`.
    #[inline]
    pub(crate) fn input_step(&self, t: usize, k: usize) -> Option<usize> {
        // At most `steps + 2·padding − 1`, which `new` checked fits.
        let padded_at = t * self.stride + k * self.dilation;
        padded_at.checked_sub(self.padding).filter(|&s| s < self.steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lengths_follow_pytorch() {
        let g = Conv1dGeometry::new(28, 3, 1, 1, 1).unwrap();
        assert_eq!(g.out_steps, 28);
        // (7 + 4 − 4 − 1) / 2 + 1 = 4
        assert_eq!(Conv1dGeometry::new(7, 3, 2, 2, 2).unwrap().out_steps, 4);
        // (10 − 5) / 3 + 1 = 2: the last step is never read.
        assert_eq!(Conv1dGeometry::new(10, 5, 3, 0, 1).unwrap().out_steps, 2);
        // A kernel as long as the padded steps: one output.
        assert_eq!(Conv1dGeometry::new(4, 6, 1, 1, 1).unwrap().out_steps, 1);
    }

    #[test]
    fn taps_in_the_padding_read_nothing() {
        let g = Conv1dGeometry::new(7, 3, 2, 2, 2).unwrap();
        let taps: Vec<_> = (0..g.out_steps).map(|t| [0, 1, 2].map(|k| g.input_step(t, k))).collect();
        assert_eq!(taps[0], [None, Some(0), Some(2)]);
        assert_eq!(taps[3], [Some(4), Some(6), None]);
    }

    #[test]
    fn impossible_geometries_are_errors() {
        let message = |r: Result<Conv1dGeometry>| r.unwrap_err().to_string();
        let long = message(Conv1dGeometry::new(4, 3, 1, 0, 2));
        assert!(long.contains("spans 5 steps") && long.contains("4 padded steps"), "{long}");
        assert!(message(Conv1dGeometry::new(4, 7, 1, 1, 1)).contains("spans 7 steps"));
        for (steps, kernel, stride, dilation) in [(4, 3, 0, 1), (4, 0, 1, 1), (4, 3, 1, 0), (0, 1, 1, 1)] {
            let m = message(Conv1dGeometry::new(steps, kernel, stride, 0, dilation));
            assert!(m.contains("at least 1"), "{m}");
        }
        assert!(message(Conv1dGeometry::new(4, 3, 1, usize::MAX, 1)).contains("overflow"));
        assert!(message(Conv1dGeometry::new(4, 3, 1, 0, usize::MAX)).contains("overflow"));
    }
}
