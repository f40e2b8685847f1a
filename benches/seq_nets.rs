//! The networks and data of issue 19's sequence cases, shared by `seq.rs`
//! (criterion) and `seq_steps.rs` (a fixed number of steps, for profilers).

#![allow(dead_code)]

use staticnet::init::{next_seed, seeded_rng};
use staticnet::prelude::*;

/// Token ids per window.
pub const STEPS: usize = 64;
/// Distinct tokens (the KJV text's characters).
pub const VOCAB: usize = 63;
/// Logits per window: `[STEPS, VOCAB]`.
pub const LOGITS: usize = STEPS * VOCAB;
/// Windows per training batch.
pub const BATCH: usize = 32;
/// Tokens sampled by `generate_tokens`.
pub const TOKENS: usize = 200;

network! {
    /// A GPT of two pre-LN blocks over 64 characters (issue 19's `CharGpt`, as in `examples/charlm.rs`).
    pub struct CharGpt {
        input: tokens[64],                       // 64 token ids per sample
        embed: embedding(63 -> 128),             // [64] tokens -> [64, 128]
        pos: positional,                         // learned position embedding, added: [64, 128]
        att1: residual { layer_norm, attention(heads = 4, causal) },
        ff1: residual { layer_norm, dense(512), gelu, dense(128) },
        att2: residual { layer_norm, attention(heads = 4, causal) },
        ff2: residual { layer_norm, dense(512), gelu, dense(128) },
        layer_norm,
        head: dense(63),                         // at every step: [64, 63]
        output: [64, 63],
    }
}

network! {
    /// A recurrent language model: an LSTM over the embedded characters (`examples/charlm.rs`).
    pub struct CharLstm {
        input: tokens[64],
        embed: embedding(63 -> 64),
        rnn: lstm(256),
        head: dense(63),
        output: [64, 63],
    }
}

/// `n` windows of random token ids (whole numbers below `VOCAB`, as f32) and
/// random next-token labels, from a fixed seed.
pub fn windows(n: usize) -> (Batch<f32, STEPS>, StepLabels<STEPS>) {
    let mut rng = seeded_rng(19);
    let mut id = || (next_seed(&mut rng) % VOCAB as u64) as usize;
    let x = Batch::from_fn(n, |_, _| id() as f32);
    let labels = (0..n).map(|_| std::array::from_fn(|_| id())).collect();
    (x, labels)
}
