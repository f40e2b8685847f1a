//! What the fuzz targets share: the fixed network the loaders fill, and
//! snapshots of its state to check that a refused file changed nothing.

use staticnet::prelude::*;

network! {
    /// A small CNN with every kind of tensor and state a file can hold:
    /// convolution weights and bias, batch-norm parameters and running
    /// statistics (and `num_batches_tracked`), a dropout generator, a dense head.
    pub struct FuzzCnn {
        input: [1, 8, 8],
        conv1: conv2d(4, kernel = 3), bn1: batch_norm, relu,   // => [4, 6, 6]
        max_pool(2),                                          // => [4, 3, 3]
        flatten,
        drop: dropout(0.25),
        head: dense(3),
    }
}

/// The input size of [`FuzzCnn`].
pub const IN: usize = 64;

/// Every parameter and buffer, by name, as the bits of its values widened to f64.
pub fn values<T: Float, N: Params<T>>(net: &N) -> Vec<(String, Vec<u64>)> {
    let mut out = Vec::new();
    let bits = |v: &[T]| v.iter().map(|x| x.as_f64().to_bits()).collect::<Vec<_>>();
    net.visit_params(&ParamPath::ROOT, &mut |p| out.push((p.name.to_string(), bits(p.value))));
    net.visit_buffers(&ParamPath::ROOT, &mut |b| out.push((b.name.to_string(), bits(b.value))));
    out
}

/// Whether every parameter (not the buffers) is finite.
pub fn params_finite<T: Float, N: Params<T>>(net: &N) -> bool {
    let mut finite = true;
    net.visit_params(&ParamPath::ROOT, &mut |p| finite &= p.value.iter().all(|x| x.as_f64().is_finite()));
    finite
}

/// [`values`] and every dropout generator: the whole state a checkpoint restores.
pub fn state<T: Float, N: Params<T>>(
    net: &mut N,
) -> (Vec<(String, Vec<u64>)>, Vec<(String, SeededRngDebug)>) {
    let mut rngs = Vec::new();
    net.visit_rngs(&ParamPath::ROOT, &mut |name, rng| {
        rngs.push((name.to_string(), SeededRngDebug(rng.clone())))
    });
    (values(&*net), rngs)
}

/// A generator compared by state, printed by its position.
#[derive(Clone, PartialEq)]
pub struct SeededRngDebug(pub staticnet::init::SeededRng);

impl std::fmt::Debug for SeededRngDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rng(stream {}, word {})", self.0.get_stream(), self.0.get_word_pos())
    }
}

/// Four samples with labels 0, 1, 2, 0, to run a few training steps on whatever loaded.
pub fn tiny_dataset() -> Dataset<f32, IN, Labels> {
    let x = Batch::<f32, IN>::from_fn(4, |r, c| ((r * 7 + c * 3) % 11) as f32 / 11.0);
    match Dataset::new(x, vec![0, 1, 2, 0]) {
        Ok(d) => d,
        Err(e) => panic!("a fixed dataset of 4 samples and 4 labels: {e}"),
    }
}
