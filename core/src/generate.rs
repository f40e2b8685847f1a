//! Sampling from a language model: one token at a time, each drawn from the
//! network's prediction at the last step of the window so far.
//!
//! A network with an incremental decoder ([`Network::decoder`]: a causal token
//! model, see [`crate::decode`]) computes only the new position while the text
//! fits in its window of `T` positions: token `p` costs one step through the
//! layers and `p + 1` attention scores per head, with every earlier position's
//! keys and values kept. Past `T` tokens the window slides, and since positions
//! are absolute (a `positional` table) every position of the new window moves:
//! nothing in the cache holds, so each further token is one pass over the whole
//! window, as PyTorch's plain generator does when it truncates the context.
//! Both ways give the same logits (to rounding) and so the same draws.

use crate::decode::Decoder;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{seeded_rng, SeededRng};
use crate::network::Network;
use crate::tensor::Batch;

/// How [`generate`] draws each token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Divides the logits before the softmax: below 1 sharpens, above 1 flattens.
    pub temperature: f64,
    /// Draw only among the `top_k` most likely tokens; 0 means all of them.
    pub top_k: usize,
    /// The seed of the draws: the same seed, prompt and model give the same text.
    pub seed: u64,
}

impl Default for Sampling {
    /// Temperature 1, every token, seed 0.
    fn default() -> Self {
        Sampling { temperature: 1.0, top_k: 0, seed: 0 }
    }
}

/// Continues `prompt` (token ids) by `count` tokens drawn from `net`, a
/// network from `[STEPS]` token ids to `[STEPS, V]` logits (`OUT = STEPS·V`)
/// that is causal: each step's logits depend only on the ids up to it. The
/// window is the last `STEPS` ids; a shorter one is padded after its end,
/// which a causal network never looks at. Returns only the new ids.
///
/// While the text fits the window, a network with a [`Network::decoder`]
/// computes only the new position of each token (see the module docs).
///
/// Errors: an empty prompt, an id `>= V`, a temperature that is not positive
/// and finite, `top_k > V`, or logits that are not finite.
pub fn generate<T, N, const STEPS: usize, const OUT: usize>(
    net: &N,
    prompt: &[usize],
    count: usize,
    sampling: &Sampling,
) -> Result<Vec<usize>>
where
    T: Float,
    N: Network<T, STEPS, OUT>,
{
    sample(net, net.decoder(), prompt, count, sampling)
}

/// [`generate`] without the incremental decoder: every token is one pass over
/// the whole window. The same ids as [`generate`] (to the rounding of the
/// logits); for checking it, and for measuring what the decoder saves.
///
/// Errors: as [`generate`].
pub fn generate_full_window<T, N, const STEPS: usize, const OUT: usize>(
    net: &N,
    prompt: &[usize],
    count: usize,
    sampling: &Sampling,
) -> Result<Vec<usize>>
where
    T: Float,
    N: Network<T, STEPS, OUT>,
{
    sample(net, None, prompt, count, sampling)
}

/// The loop of [`generate`], with `decoder` while the text fits the window
/// and the whole window's pass otherwise; checks `prompt` and `sampling` first.
fn sample<T, N, const STEPS: usize, const OUT: usize>(
    net: &N,
    mut decoder: Option<Box<dyn Decoder<T> + '_>>,
    prompt: &[usize],
    count: usize,
    sampling: &Sampling,
) -> Result<Vec<usize>>
where
    T: Float,
    N: Network<T, STEPS, OUT>,
{
    let vocab = const {
        assert!(STEPS > 0 && OUT.is_multiple_of(STEPS), "a language model gives [STEPS, V] logits");
        OUT / STEPS
    };
    check(prompt, vocab, sampling)?;
    let mut tokens = prompt.to_vec();
    let (mut x, mut trace) = (Batch::<T, STEPS>::zeros(1), N::Trace::default());
    let (mut rng, mut scratch) = (seeded_rng(sampling.seed), Scratch::default());
    for _ in 0..count {
        let id = match decoder.as_deref_mut() {
            // The window still starts at position 0: the cache has every earlier position.
            Some(decoder) if tokens.len() <= STEPS => {
                for &id in &tokens[decoder.len()..tokens.len() - 1] {
                    decoder.push(id)?;
                }
                let logits = decoder.push(tokens[tokens.len() - 1])?;
                finite(logits, tokens.len() - 1)?;
                draw(logits, sampling, &mut scratch, &mut rng)
            }
            // The whole window: every position moved, nothing can be reused.
            _ => {
                let window = &tokens[tokens.len().saturating_sub(STEPS)..];
                x.fill(T::zero());
                x.iter_mut().zip(window).for_each(|(x, &id)| *x = T::cast(id as f64));
                let y = net.infer(&x, &mut trace);
                let last = window.len() - 1;
                let logits = &y.as_slice()[last * vocab..(last + 1) * vocab];
                finite(logits, last)?;
                draw(logits, sampling, &mut scratch, &mut rng)
            }
        };
        tokens.push(id);
    }
    Ok(tokens.split_off(prompt.len()))
}

/// Refuses logits that are not all finite, naming the first and its step.
fn finite<T: Float>(logits: &[T], step: usize) -> Result<()> {
    match logits.iter().position(|l| !l.is_finite()) {
        None => Ok(()),
        Some(bad) => Err(Error::InvalidConfig(format!(
            "generation: the model's logit for token {bad} at step {step} is {} (not finite)",
            logits[bad]
        ))),
    }
}

fn check(prompt: &[usize], vocab: usize, sampling: &Sampling) -> Result<()> {
    let problem = if prompt.is_empty() {
        "the prompt is empty: give at least one token".to_string()
    } else if let Some(step) = prompt.iter().position(|&id| id >= vocab) {
        return Err(Error::TokenOutOfRange { token: prompt[step] as f64, sample: 0, step, vocab });
    } else if !(sampling.temperature > 0.0 && sampling.temperature.is_finite()) {
        format!("temperature {} must be positive and finite", sampling.temperature)
    } else if sampling.top_k > vocab {
        format!("top_k {} is more than the {vocab} tokens", sampling.top_k)
    } else {
        return Ok(());
    };
    Err(Error::InvalidConfig(format!("generation: {problem}")))
}

/// The buffers [`draw`] reuses from token to token: the weights, and a copy
/// to find the `top_k`-th largest in.
#[derive(Default)]
struct Scratch {
    weights: Vec<f64>,
    ranked: Vec<f64>,
}

/// One token from `softmax(logits / temperature)` restricted to the `top_k`
/// largest logits.
fn draw<T: Float>(logits: &[T], sampling: &Sampling, scratch: &mut Scratch, rng: &mut SeededRng) -> usize {
    let Scratch { weights, ranked } = scratch;
    weights.clear();
    weights.extend(logits.iter().map(|l| l.as_f64() / sampling.temperature));
    if sampling.top_k > 0 && sampling.top_k < weights.len() {
        ranked.clone_from(weights);
        let (_, &mut threshold, _) = ranked.select_nth_unstable_by(sampling.top_k - 1, |a, b| b.total_cmp(a));
        weights.iter_mut().filter(|w| **w < threshold).for_each(|w| *w = f64::NEG_INFINITY);
    }
    let max = weights.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    weights.iter_mut().for_each(|w| *w = (*w - max).exp());
    // A uniform draw in [0, 1) from the top 53 bits.
    let unit = (rand::Rng::next_u64(rng) >> 11) as f64 / (1u64 << 53) as f64;
    let mut u = unit * weights.iter().sum::<f64>();
    for (id, &w) in weights.iter().enumerate() {
        if u < w {
            return id;
        }
        u -= w;
    }
    // Rounding left `u` past the end: the last token with any weight.
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(logits: &[f64], sampling: Sampling, draws: usize) -> Vec<usize> {
        let (mut rng, mut scratch) = (seeded_rng(sampling.seed), Scratch::default());
        let mut counts = vec![0; logits.len()];
        (0..draws).for_each(|_| counts[draw(logits, &sampling, &mut scratch, &mut rng)] += 1);
        counts
    }

    #[test]
    fn draws_follow_the_softmax() {
        // Probabilities 1/7, 2/7, 4/7.
        let logits = [0.0, 2f64.ln(), 4f64.ln()];
        let c = counts(&logits, Sampling::default(), 70_000);
        for (got, expected) in c.iter().zip([10_000.0, 20_000.0, 40_000.0]) {
            assert!((*got as f64 - expected).abs() < 0.03 * expected, "{c:?}");
        }
    }

    #[test]
    fn temperature_and_top_k_reshape_the_choice() {
        let logits = [0.0, 2f64.ln(), 4f64.ln()];
        // Temperature 1/2 squares the odds: 1/21, 4/21, 16/21.
        let c = counts(&logits, Sampling { temperature: 0.5, ..Sampling::default() }, 42_000);
        assert!((c[2] as f64 - 32_000.0).abs() < 800.0, "{c:?}");
        // Top 1 is the arg-max, every time.
        let c = counts(&logits, Sampling { top_k: 1, ..Sampling::default() }, 1000);
        assert_eq!(c, [0, 0, 1000]);
        // Top 2 never draws the least likely.
        let c = counts(&logits, Sampling { top_k: 2, ..Sampling::default() }, 3000);
        assert_eq!(c[0], 0, "{c:?}");
    }

    #[test]
    fn refuses_what_it_cannot_sample() {
        let ok = Sampling::default();
        assert!(check(&[], 5, &ok).is_err());
        assert!(matches!(check(&[1, 5], 5, &ok), Err(Error::TokenOutOfRange { step: 1, vocab: 5, .. })));
        assert!(check(&[1], 5, &Sampling { temperature: 0.0, ..ok }).is_err());
        assert!(check(&[1], 5, &Sampling { temperature: f64::NAN, ..ok }).is_err());
        assert!(check(&[1], 5, &Sampling { top_k: 6, ..ok }).is_err());
        assert!(check(&[4], 5, &Sampling { top_k: 5, ..ok }).is_ok());
    }
}
