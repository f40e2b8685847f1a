//! A token network decoding one token at a time: [`TokenDecoder`] holds the
//! network's step cache and feeds it ids in order; [`Decoder`] is its
//! object-safe face, which [`Network::decoder`](crate::network::Network::decoder)
//! hands to [`generate`](crate::generate::generate).

use super::StepLayer;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::tensor::Batch;

/// A causal token model fed one id at a time, giving the logits at each new
/// position: the same logits as the whole window's pass at that position.
///
/// It covers one window: positions `0..window()`. Positions are absolute, so
/// a full window cannot slide; [`Decoder::reset`] starts a new one.
pub trait Decoder<T: Float> {
    /// The window `T`: how many positions one run holds.
    fn window(&self) -> usize;

    /// The vocabulary `V`: how many logits each position gives.
    fn vocab(&self) -> usize;

    /// How many ids have been fed since the start or the last reset.
    fn len(&self) -> usize;

    /// Whether no id has been fed since the start or the last reset.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every position: the next id is position 0.
    fn reset(&mut self);

    /// Feeds `token` at position [`Decoder::len`] and returns that position's
    /// `V` logits (the prediction of the next id).
    ///
    /// Errors: [`Error::TokenOutOfRange`] for an id `>= V`;
    /// [`Error::InvalidConfig`] when the window is full.
    fn push(&mut self, token: usize) -> Result<&[T]>;
}

/// The [`Decoder`] of a token network `N` of window `STEPS` and vocabulary
/// `V`: `N` steps from one id to `V` logits ([`StepLayer<T, 1, V>`], which
/// `network!` implements for causal token networks).
///
/// ```
/// use staticnet::decode::{Decoder, TokenDecoder};
/// use staticnet::prelude::*;
///
/// network! {
///     struct Tiny {
///         input: tokens[8],
///         embed: embedding(5 -> 8),
///         pos: positional,
///         att: residual { layer_norm, attention(heads = 2, causal) },
///         head: dense(5),
///         output: [8, 5],
///     }
/// }
///
/// let net = Tiny::<f64>::init(Init::Auto, 1);
/// let mut decoder = TokenDecoder::<f64, Tiny<f64>, 8, 5>::new(&net);
/// let first = decoder.push(3)?.to_vec();
/// let second = decoder.push(1)?;
/// // The same logits as the whole window's pass at positions 0 and 1.
/// let mut x = Batch::<f64, 8>::zeros(1);
/// x.as_mut_slice()[..2].copy_from_slice(&[3.0, 1.0]);
/// let y = net.forward(&x);
/// assert!(first.iter().zip(&y.as_slice()[..5]).all(|(a, b)| (a - b).abs() < 1e-12));
/// assert!(second.iter().zip(&y.as_slice()[5..10]).all(|(a, b)| (a - b).abs() < 1e-12));
/// # Ok::<(), staticnet::Error>(())
/// ```
pub struct TokenDecoder<'n, T: Float, N: StepLayer<T, 1, V>, const STEPS: usize, const V: usize> {
    net: &'n N,
    cache: N::Cache,
    x: Batch<T, 1>,
    logits: Batch<T, V>,
    len: usize,
}

impl<'n, T: Float, N: StepLayer<T, 1, V>, const STEPS: usize, const V: usize>
    TokenDecoder<'n, T, N, STEPS, V>
{
    /// A decoder at position 0, its cache allocated for the `STEPS` positions.
    pub fn new(net: &'n N) -> Self {
        TokenDecoder { net, cache: net.step_cache(), x: Batch::zeros(1), logits: Batch::zeros(1), len: 0 }
    }
}

impl<T: Float, N: StepLayer<T, 1, V>, const STEPS: usize, const V: usize> Decoder<T>
    for TokenDecoder<'_, T, N, STEPS, V>
{
    fn window(&self) -> usize {
        STEPS
    }

    fn vocab(&self) -> usize {
        V
    }

    fn len(&self) -> usize {
        self.len
    }

    fn reset(&mut self) {
        self.len = 0;
    }

    fn push(&mut self, token: usize) -> Result<&[T]> {
        if token >= V {
            return Err(Error::TokenOutOfRange { token: token as f64, sample: 0, step: self.len, vocab: V });
        }
        if self.len == STEPS {
            return Err(Error::InvalidConfig(format!(
                "decoding: the window of {STEPS} positions is full; reset the decoder to start a new one"
            )));
        }
        self.x[0] = T::cast(token as f64);
        self.net.step(&self.x, self.len, &mut self.logits, &mut self.cache);
        self.len += 1;
        Ok(self.logits.as_slice())
    }
}
