//! The inference pass from a compact weight (`crate::quant`): the weight widened
//! to f32 once per call, then the im2col columns and the small product of each
//! sample, one thread (a quantized network is an inference-only copy).

use super::im2col::im2col;
use super::products::product;
use super::{Conv2d, Conv2dWorkspace};
use crate::float::Float;
use crate::layers::ensure_len;
use crate::quant::Compact;
use crate::tensor::Batch;

impl<T: Float, const IN: usize, const OUT: usize, const PATCH: usize, const COUT: usize>
    Conv2d<T, IN, OUT, PATCH, COUT>
{
    /// `y` from `compact` for an f32 layer; `false`, having written nothing, for f64.
    /// The scratch is `ws.dcols` (one sample's columns), as in `forward_with`.
    pub(super) fn forward_compact(
        &self,
        compact: &Compact,
        x: &Batch<T, IN>,
        y: &mut Batch<T, OUT>,
        ws: &mut Conv2dWorkspace<T>,
    ) -> bool {
        let g = &self.geometry;
        let ohw = g.out_spatial();
        let per_sample = if g.is_pointwise() { 0 } else { PATCH * ohw };
        ensure_len(&mut ws.dcols, per_sample);
        let (Some(xs), Some(ys), Some(cols)) =
            (T::f32s(x.as_slice()), T::f32s_mut(y.as_mut_slice()), T::f32s_mut(&mut ws.dcols[..per_sample]))
        else {
            return false;
        };
        let bias = self.bias.as_deref().and_then(|b| T::f32s(b.as_slice()));
        compact.with_f32(&mut |w| {
            for (xs, ys) in xs.chunks_exact(IN).zip(ys.chunks_exact_mut(OUT)) {
                if per_sample == 0 {
                    product(ys, ohw, w, PATCH, xs, bias);
                } else {
                    im2col(g, xs, cols);
                    product(ys, ohw, w, PATCH, cols, bias);
                }
            }
        });
        true
    }
}
