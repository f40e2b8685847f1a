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
//! With a network of `network!`: `let q = net.quantized::<Int8>(); q.classify(&x)`;
//! `q.save(path)` writes it as safetensors with the compact weights, and
//! `Quantized::<Net>::load(path)` serves it without ever computing an f32 weight
//! (the format in [`Quantized::save`]).
//!
//! # Design
//!
//! A network stays one type: every [`Dense`](crate::layers::Dense) and
//! [`Conv2d`](crate::layers::Conv2d) holds its weight as a [`Weight`]: a full
//! matrix, or only a [`Compact`] form. [`Quantize::into_quantized`] replaces
//! every dense and conv2d weight by its compact form and frees the f32 matrix
//! (`Params::visit_compact`, which generated networks and the composite layers
//! forward to their layers, `PerStep` too), so an int8 network holds about a
//! quarter of the f32 weight bytes ([`Quantized::held_bytes`]); `quantized(&self)`
//! does the same to a clone. A layer with a compact weight computes its inference
//! pass from it: one sample through a GEMV that widens the weights in registers
//! (`kernels::quant`), a batch through panels widened to f32 once per call and
//! the f32 product. [`Quantized`] owns that network and exposes only inference,
//! so the compact weights can never go stale under training. Memory beyond the
//! compact weights: batches of 4 samples or more widen their panels into a
//! per-thread buffer of up to 1 MB (2¹⁸ values, or a layer's whole weight if
//! smaller: 784 KB for the reference MLP's first layer); batches of 1 to 3 use none.

mod compact;
mod file;
#[cfg(test)]
mod tests;
mod weight;

pub use compact::Compact;
pub use weight::Weight;

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

/// A dense or conv2d layer's weight, handed to `Params::visit_compact`'s visitor.
pub struct CompactSlot<'a, T> {
    /// The weight's `state_dict` name (`fc1.weight`).
    pub name: ParamPath<'a>,
    /// Its PyTorch shape (`[out, in]`, `[out, in, kh, kw]`).
    pub shape: &'a [usize],
    /// Its number of output rows (channels).
    pub rows: usize,
    weight: &'a mut dyn Slot<T>,
}

/// What a [`CompactSlot`] reaches: a [`Weight`] of any size.
trait Slot<T> {
    fn values(&self) -> &[T];
    fn compact(&self) -> Option<&Compact>;
    fn store(&mut self, compact: Compact);
    fn clear(&mut self);
    fn bytes(&self) -> usize;
}

impl<T: crate::float::Float, const R: usize, const C: usize> Slot<T> for Weight<T, R, C> {
    fn values(&self) -> &[T] {
        self.as_slice()
    }
    fn compact(&self) -> Option<&Compact> {
        Weight::compact(self)
    }
    fn store(&mut self, compact: Compact) {
        self.set_compact(compact)
    }
    fn clear(&mut self) {
        Weight::clear(self)
    }
    fn bytes(&self) -> usize {
        Weight::bytes(self)
    }
}

impl<'a, T> CompactSlot<'a, T> {
    /// The slot of `weight` named `name`, of PyTorch shape `shape` (output rows first).
    pub(crate) fn new<const R: usize, const C: usize>(
        name: ParamPath<'a>,
        shape: &'a [usize],
        weight: &'a mut Weight<T, R, C>,
    ) -> Self
    where
        T: crate::float::Float,
    {
        CompactSlot { name, shape, rows: shape.first().copied().unwrap_or(0), weight }
    }

    /// The weight's values, PyTorch's row-major `[out, in…]` (the dequantized
    /// ones, widened, if it is already compact).
    pub fn values(&self) -> &[T] {
        self.weight.values()
    }

    /// Its compact form, if it has one.
    pub fn compact(&self) -> Option<&Compact> {
        self.weight.compact()
    }

    /// The heap bytes the weight holds ([`Weight::bytes`]).
    pub fn bytes(&self) -> usize {
        self.weight.bytes()
    }

    /// Replaces the weight's matrix by `compact`, freeing the matrix.
    fn store(&mut self, compact: Compact) {
        self.weight.store(compact)
    }

    /// Replaces the weight by a zero matrix (`Weight::clear`).
    fn clear(&mut self) {
        self.weight.clear()
    }
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
/// built by [`Quantize::quantized`], [`Quantize::into_quantized`] or
/// [`Quantized::load`]. Inference only.
#[derive(Clone, Debug)]
pub struct Quantized<N> {
    net: N,
    layers: Vec<LayerReport>,
}

/// `quantized::<Int8>()` and `quantized::<Bf16>()` for every f32 network.
pub trait Quantize: Params<f32> + Clone + Sized {
    /// A copy of this network that infers from `Q` weights (see the [module docs](self)).
    fn quantized<Q: Scheme>(&self) -> Quantized<Self> {
        self.clone().into_quantized::<Q>()
    }

    /// This network, inferring from `Q` weights: each dense and conv2d weight's
    /// f32 matrix is freed as soon as its compact form is made, so the f32
    /// weights are never held twice.
    fn into_quantized<Q: Scheme>(mut self) -> Quantized<Self> {
        let mut layers = Vec::new();
        self.visit_compact(&ParamPath::ROOT, &mut |mut s| {
            if s.compact().is_some() {
                return;
            }
            let compact = Q::compact(s.values(), s.rows);
            layers.push(LayerReport {
                name: s.name.to_string(),
                shape: [compact.rows(), compact.cols()],
                bytes: compact.bytes(),
                relative_error: relative_error(s.values(), &compact.dequantized()),
            });
            s.store(compact);
        });
        Quantized { net: self, layers }
    }
}

impl<N: Params<f32> + Clone> Quantize for N {}

/// The metadata key under which a saved network keeps a weight's relative error.
fn relative_error_key(name: &str) -> String {
    format!("staticnet.relative_error.{name}")
}

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
    /// The network, read-only. Its dense and conv2d weights hold only their
    /// compact forms: reading one as a matrix widens it ([`Weight`]).
    pub fn network(&self) -> &N {
        &self.net
    }

    /// The heap bytes the network's dense and conv2d weights hold (biases and
    /// other layers' parameters are not counted): about a quarter of the f32
    /// weights' in int8, half in bf16.
    pub fn held_bytes(&mut self) -> usize
    where
        N: Params<f32>,
    {
        let mut bytes = 0;
        self.net.visit_compact(&ParamPath::ROOT, &mut |s| bytes += s.bytes());
        bytes
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
