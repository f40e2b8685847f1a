//! [`evaluate`]: a network's loss and accuracy on a dataset, in inference mode
//! (per class: [`crate::metrics::confusion_matrix`]).

use crate::data::{Dataset, MiniBatch};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::history::Metrics;
use crate::loss::Loss;
use crate::network::Network;

/// The loss and accuracy of `net` on `data`, computed in batches of `batch_size`.
///
/// The accuracy is `None` for losses where it means nothing: regression
/// ([`crate::loss::MeanSquaredError`]) and [`crate::loss::BinaryCrossEntropy`]
/// on more than one output per sample (an autoencoder's pixels).
pub fn evaluate<T, N, L, const IN: usize, const OUT: usize>(
    net: &N,
    loss: &L,
    data: &Dataset<T, IN, L::Target>,
    batch_size: usize,
) -> Result<Metrics>
where
    T: Float,
    N: Network<T, IN, OUT>,
    L: Loss<T, OUT>,
{
    if batch_size == 0 {
        return Err(Error::InvalidConfig("batch size must be at least 1".into()));
    }
    crate::loss::check_pairing::<T, N, L, IN, OUT>()?;
    N::check_input(data.features())?;
    let indices: Vec<usize> = (0..data.len()).collect();
    let (mut batch, mut trace) = (MiniBatch::new(), N::Trace::default());
    let (mut loss_sum, mut right, mut judged) = (0.0, 0usize, 0usize);
    for chunk in indices.chunks(batch_size) {
        batch.fill_from(data, chunk);
        let out = net.infer(&batch.features, &mut trace);
        loss_sum += loss.loss(out, &batch.targets)?.as_f64() * chunk.len() as f64;
        if let Some((r, n)) = loss.correct(out, &batch.targets) {
            right += r;
            judged += n;
        }
    }
    Ok(Metrics {
        loss: loss_sum / data.len().max(1) as f64,
        accuracy: (judged > 0).then(|| right as f64 / judged as f64),
    })
}
