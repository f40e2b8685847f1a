//! `generate` on a causal token network: greedy decoding (`top_k = 1`) picks
//! the arg-max of the network's logits at the window's last step, the window
//! slides once the text is longer than the network's steps, and a seed fixes
//! the draws.

use staticnet::prelude::*;

network! {
    struct TinyLm {
        input: tokens[4],
        embed: embedding(6 -> 8),
        pos: positional,
        att: residual { layer_norm, attention(heads = 2, causal) },
        layer_norm,
        head: dense(6),
    }
}

/// The arg-max at the last step of `window` (at most 4 ids), padded with zeros after it.
fn greedy_next(net: &TinyLm<f64>, window: &[usize]) -> usize {
    let mut x = Batch::<f64, 4>::zeros(1);
    window.iter().enumerate().for_each(|(t, &id)| x[t] = id as f64);
    let y = net.forward(&x);
    let logits = &y.as_slice()[(window.len() - 1) * 6..window.len() * 6];
    (0..6).fold(0, |best, i| if logits[i] > logits[best] { i } else { best })
}

#[test]
fn greedy_generation_follows_the_logits_of_the_last_step() {
    let net = TinyLm::<f64>::init(Init::Auto, 3);
    let greedy = Sampling { top_k: 1, ..Sampling::default() };
    let new = generate(&net, &[2, 5], 6, &greedy).unwrap();
    assert_eq!(new.len(), 6);
    let mut text = vec![2, 5];
    for &id in &new {
        let window = &text[text.len().saturating_sub(4)..];
        assert_eq!(id, greedy_next(&net, window), "after {text:?}");
        text.push(id);
    }
}

#[test]
fn the_seed_fixes_the_draws_and_bad_prompts_are_errors() {
    let net = TinyLm::new(3);
    let sampling = Sampling { temperature: 1.5, top_k: 0, seed: 9 };
    let a = generate(&net, &[1], 20, &sampling).unwrap();
    assert_eq!(a, generate(&net, &[1], 20, &sampling).unwrap());
    assert!(a.iter().all(|&id| id < 6));
    let other = generate(&net, &[1], 20, &Sampling { seed: 10, ..sampling }).unwrap();
    assert_ne!(a, other, "another seed draws another text");
    assert!(matches!(generate(&net, &[1, 6], 1, &sampling), Err(Error::TokenOutOfRange { token: 6.0, .. })));
    assert!(generate(&net, &[], 1, &sampling).is_err());
}

#[test]
fn a_token_network_shows_its_input_as_tokens() {
    let summary = TinyLm::summary();
    let input = summary.lines().find(|l| l.starts_with("input")).unwrap();
    assert_eq!(input.split_whitespace().collect::<Vec<_>>(), ["input", "tokens[4]"], "{summary}");
    assert!(TinyLm::to_dot().contains("\"input\" [label=\"input\\ntokens[4]\""), "{}", TinyLm::to_dot());
}
