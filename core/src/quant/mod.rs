//! Weight-only quantization for inference: dense and conv2d weights in int8
//! (one symmetric scale per output channel) or bfloat16, activations in f32 —
//! what PyTorch's dynamic quantization and candle's quantized matmuls do on CPUs.
//!
//! [`Quantize::quantized`] turns a trained f32 network into a [`Quantized`] one,
//! which only infers (`forward`, `infer`, `predict`, `classify`):
//!
//! ```
//! use staticnet_core::init::{seeded_rng, Init};
//! use staticnet_core::layers::Dense;
//! use staticnet_core::quant::{Bf16, Int8, Quantize};
//! use staticnet_core::Batch;
//! let layer = Dense::<f32, 16, 4>::new(true, Init::Auto, &mut seeded_rng(1));
//! let q = layer.quantized::<Int8>();
//! let x = Batch::<f32, 16>::from_fn(3, |i, j| ((i + j) as f32).sin());
//! let (mut exact, mut approx) = (Batch::zeros(3), Batch::zeros(3));
//! layer.forward(&x, &mut exact);
//! q.network().forward(&x, &mut approx);
//! assert!((&exact - &approx).norm() < 0.02 * exact.norm());
//! assert!(q.weight_bytes() * 3 < layer.quantized::<Bf16>().weight_bytes() * 2);
//! ```
//!
//! With a network of `network!`: `let q = net.quantized::<Int8>(); q.classify(&x)`.
//!
//! # Design
//!
//! A network stays one type: every [`Dense`](crate::layers::Dense) and
//! [`Conv2d`](crate::layers::Conv2d) has a slot for a [`Compact`] copy of its
//! weight, empty in a network you train. [`Quantize::quantized`] clones the
//! network and fills every slot (`Params::visit_compact`, which generated
//! networks and the composite layers forward to their layers); a layer with a
//! filled slot computes its inference pass from the compact weight: one sample
//! through a GEMV that widens the weights in registers (`kernels::quant`), a
//! batch through panels widened to f32 once per call and the f32 product.
//! [`Quantized`] owns that network and exposes only inference, so the compact
//! weights can never go stale under training. The f32 weights stay in memory
//! (the layers keep their types); the passes read only the compact ones. A
//! `dense` inside a sequence network (`PerStep`) stays f32.

mod compact;
#[cfg(test)]
mod tests;

pub use compact::Compact;

use crate::network::{Network, Prediction};
use crate::params::{ParamPath, Params};
use crate::tensor::Batch;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Int8 {}
    impl Sealed for super::Bf16 {}
}

/// A compact weight format: [`Int8`] or [`Bf16`].
pub trait Scheme: sealed::Sealed {
    /// The weight `w` (`rows` rows) in this format.
    #[doc(hidden)]
    fn compact(w: &[f32], rows: usize) -> Compact;
}

/// int8 weights with one symmetric scale per output row or channel
/// (`max |w| / 127`): a quarter of f32's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Int8;

/// bfloat16 weights (f32's exponent, 8 significant bits): half of f32's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Bf16;

impl Scheme for Int8 {
    fn compact(w: &[f32], rows: usize) -> Compact {
        Compact::int8(w, rows)
    }
}

impl Scheme for Bf16 {
    fn compact(w: &[f32], rows: usize) -> Compact {
        Compact::bf16(w, rows)
    }
}

/// A layer's weight and its slot for a [`Compact`] copy (see `Params::visit_compact`).
pub struct CompactSlot<'a, T> {
    /// The weight's `state_dict` name (`fc1.weight`).
    pub name: ParamPath<'a>,
    /// The weight, PyTorch's row-major `[out, in…]`.
    pub weight: &'a [T],
    /// Its number of output rows (channels).
    pub rows: usize,
    /// The compact copy the layer's inference pass reads when present.
    pub slot: &'a mut Option<Box<Compact>>,
}

/// How one layer's weight came out of quantization.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerReport {
    /// The weight's `state_dict` name.
    pub name: String,
    /// Output rows (channels) × inputs per row.
    pub shape: [usize; 2],
    /// The compact weight's bytes (f32 would take `4·rows·cols`).
    pub bytes: usize,
    /// `‖W − dequantized(W)‖ / ‖W‖` (Frobenius norms; 0 for an all-zero weight).
    pub relative_error: f64,
}

/// An f32 network whose dense and conv2d layers infer from compact weights;
/// built by [`Quantize::quantized`]. Inference only.
#[derive(Clone, Debug)]
pub struct Quantized<N> {
    net: N,
    layers: Vec<LayerReport>,
}

/// `quantized::<Int8>()` and `quantized::<Bf16>()` for every f32 network.
pub trait Quantize: Params<f32> + Clone + Sized {
    /// A copy of this network that infers from `Q` weights (see the [module docs](self)).
    fn quantized<Q: Scheme>(&self) -> Quantized<Self> {
        let mut net = self.clone();
        let mut layers = Vec::new();
        net.visit_compact(&ParamPath::ROOT, &mut |s| {
            let compact = Q::compact(s.weight, s.rows);
            layers.push(LayerReport {
                name: s.name.to_string(),
                shape: [compact.rows(), compact.cols()],
                bytes: compact.bytes(),
                relative_error: relative_error(s.weight, &compact.dequantized()),
            });
            *s.slot = Some(Box::new(compact));
        });
        Quantized { net, layers }
    }
}

impl<N: Params<f32> + Clone> Quantize for N {}

fn relative_error(w: &[f32], d: &[f32]) -> f64 {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&w, &d) in w.iter().zip(d) {
        diff += (f64::from(w) - f64::from(d)).powi(2);
        norm += f64::from(w).powi(2);
    }
    if norm == 0.0 {
        diff.sqrt()
    } else {
        (diff / norm).sqrt()
    }
}

impl<N> Quantized<N> {
    /// The network (its f32 weights and its layers' compact copies), read-only.
    pub fn network(&self) -> &N {
        &self.net
    }

    /// Every quantized weight, in visiting order: name, shape, bytes, relative error.
    pub fn layers(&self) -> &[LayerReport] {
        &self.layers
    }

    /// The bytes of every compact weight together.
    pub fn weight_bytes(&self) -> usize {
        self.layers.iter().map(|l| l.bytes).sum()
    }

    /// The inference pass over a batch (one sample per column), as [`Network::forward`].
    pub fn forward<const IN: usize, const OUT: usize>(&self, x: &Batch<f32, IN>) -> Batch<f32, OUT>
    where
        N: Network<f32, IN, OUT>,
    {
        self.net.forward(x)
    }

    /// The inference pass into a reused trace, as [`Network::infer`]: allocates
    /// nothing once the trace has seen the batch size.
    pub fn infer<'t, const IN: usize, const OUT: usize>(
        &self,
        x: &Batch<f32, IN>,
        trace: &'t mut N::Trace,
    ) -> &'t Batch<f32, OUT>
    where
        N: Network<f32, IN, OUT>,
    {
        self.net.infer(x, trace)
    }

    /// Class probabilities, as [`Network::predict`].
    pub fn predict<const IN: usize, const OUT: usize>(&self, x: &Batch<f32, IN>) -> Batch<f32, OUT>
    where
        N: Network<f32, IN, OUT>,
    {
        self.net.predict(x)
    }

    /// The most likely class of each sample, as [`Network::classify`].
    pub fn classify<const IN: usize, const OUT: usize>(&self, x: &Batch<f32, IN>) -> Vec<Prediction<f32>>
    where
        N: Network<f32, IN, OUT>,
    {
        self.net.classify(x)
    }
}
