//! Incremental decoding (`staticnet::decode`): a causal transformer fed one
//! token at a time gives, at every position, the logits of the whole window's
//! pass (1e-12 in f64, 1e-5 in f32), and `generate` with the decoder draws the
//! same ids as the full-window path, also once the text outgrows the window
//! and with a prompt longer than it; likewise LSTM and GRU layers, whose state
//! is their cache. Networks that cannot decode have no decoder.

use staticnet::decode::StepLayer;
use staticnet::generate::generate_full_window;
use staticnet::prelude::*;

network! {
    /// A small `CharGpt`: two causal attention blocks, an MLP block with dropout.
    struct Gpt {
        input: tokens[6],
        embed: embedding(7 -> 8),
        pos: positional,
        att1: residual { layer_norm, attention(heads = 2, causal) },
        ff1: residual { layer_norm, dense(16), gelu, dropout(0.1), dense(8) },
        att2: residual { layer_norm, attention(heads = 4, causal) },
        layer_norm,
        head: dense(7),
        output: [6, 7],
    }
}

network! {
    /// Attention without the mask: every step sees the future.
    struct Bidirectional {
        input: tokens[6],
        embed: embedding(7 -> 8),
        att: attention(heads = 2),
        head: dense(7),
    }
}

network! {
    /// Recurrent layers decode too: their state is the cache.
    struct Recurrent {
        input: tokens[6],
        embed: embedding(7 -> 8),
        rnn: lstm(8),
        gru: gru(6), tanh,
        head: dense(7),
    }
}

network! {
    /// `last` needs the whole window.
    struct Classifier { input: tokens[6], embed: embedding(7 -> 8), rnn: lstm(8), last, head: dense(7) }
}

network! {
    /// A sequence of features (not ids): stepped through `StepLayer` directly.
    struct Features {
        input: [5, 4],
        dense(8), relu,
        att: residual { attention(heads = 2, causal) },
        layer_norm,
        softmax,
    }
}

/// The whole window's logits for `ids` (padded with zeros), `[6, 7]` row-major.
fn full<T: Float, N: Network<T, 6, 42>>(net: &N, ids: &[usize]) -> Vec<T> {
    let mut x = Batch::<T, 6>::zeros(1);
    ids.iter().enumerate().for_each(|(t, &id)| x[t] = T::cast(id as f64));
    net.forward(&x).as_slice().to_vec()
}

fn logits_match<T: Float>(tolerance: f64) {
    decoder_matches(&Gpt::<T>::init(Init::Auto, 5), tolerance);
    decoder_matches(&Recurrent::<T>::init(Init::Auto, 5), tolerance);
}

/// `net`'s decoder against its full pass at every position of two windows.
fn decoder_matches<T: Float, N: Network<T, 6, 42>>(net: &N, tolerance: f64) {
    let mut decoder = net.decoder().expect("a causal token network decodes");
    assert_eq!((decoder.window(), decoder.vocab()), (6, 7));
    for ids in [[3, 1, 4, 1, 5, 6], [0, 6, 2, 2, 5, 0]] {
        decoder.reset();
        let expected = full(net, &ids);
        for (p, &id) in ids.iter().enumerate() {
            let got = decoder.push(id).unwrap();
            for (v, (&g, &e)) in got.iter().zip(&expected[p * 7..(p + 1) * 7]).enumerate() {
                let (g, e) = (g.as_f64(), e.as_f64());
                assert!((g - e).abs() <= tolerance * e.abs().max(1.0), "position {p}, token {v}: {g} vs {e}");
            }
        }
        assert!(matches!(decoder.push(1), Err(Error::InvalidConfig(_))), "the window is full");
    }
    decoder.reset();
    assert!(matches!(decoder.push(7), Err(Error::TokenOutOfRange { token: 7.0, vocab: 7, .. })));
    assert!(decoder.is_empty());
}

#[test]
fn every_position_gives_the_full_pass_logits_f64() {
    logits_match::<f64>(1e-12);
}

#[test]
fn every_position_gives_the_full_pass_logits_f32() {
    logits_match::<f32>(1e-5);
}

#[test]
fn generate_draws_what_the_full_window_draws() {
    let net = Gpt::<f32>::init(Init::Auto, 9);
    // Within the window, past it (the window slides), and from a prompt longer than it.
    for (prompt, count) in
        [(&[2][..], 5), (&[2][..], 20), (&[1, 2, 3, 4, 5, 6, 0, 1, 2][..], 8), (&[4, 4][..], 4)]
    {
        for seed in 0..4 {
            let sampling = Sampling { temperature: 1.0, top_k: 0, seed };
            let cached = generate(&net, prompt, count, &sampling).unwrap();
            assert_eq!(
                cached,
                generate_full_window(&net, prompt, count, &sampling).unwrap(),
                "{prompt:?}, seed {seed}"
            );
            assert_eq!(cached.len(), count);
        }
    }
    let greedy = Sampling { top_k: 1, ..Sampling::default() };
    let net = Gpt::<f64>::init(Init::Auto, 2);
    assert_eq!(
        generate(&net, &[3], 30, &greedy).unwrap(),
        generate_full_window(&net, &[3], 30, &greedy).unwrap()
    );
}

#[test]
fn only_causal_networks_decode() {
    assert!(Bidirectional::<f32>::init(Init::Auto, 1).decoder().is_none());
    assert!(Classifier::<f32>::init(Init::Auto, 1).decoder().is_none());
    // Their generation is the full window's.
    let net = Bidirectional::<f32>::init(Init::Auto, 1);
    let sampling = Sampling { seed: 3, ..Sampling::default() };
    assert_eq!(
        generate(&net, &[1], 9, &sampling).unwrap(),
        generate_full_window(&net, &[1], 9, &sampling).unwrap()
    );
}

#[test]
fn a_feature_network_steps_like_its_full_pass() {
    let net = Features::<f64>::init(Init::Auto, 4);
    let x = Batch::<f64, 20>::from_fn(1, |i, _| ((i * 7 % 11) as f64 - 5.0) / 3.0);
    let expected = net.forward(&x);
    let mut cache = StepLayer::<f64, 4, 8>::step_cache(&net);
    let (mut xs, mut y) = (Batch::<f64, 4>::zeros(1), Batch::<f64, 8>::zeros(1));
    for p in 0..5 {
        xs.as_mut_slice().copy_from_slice(&x.as_slice()[p * 4..(p + 1) * 4]);
        net.step(&xs, p, &mut y, &mut cache);
        for (g, e) in y.iter().zip(&expected.as_slice()[p * 8..(p + 1) * 8]) {
            assert!((g - e).abs() < 1e-12, "step {p}: {g} vs {e}");
        }
    }
}
