//! The sequence layers: conv1d, 1-D pools, LSTM and GRU (gates reordered for
//! ONNX), attention (causal or not), embedding, positional, per-step layers, `last`.

use crate::support::{check, perturb, random_batch};
use staticnet::prelude::*;

network! {
    /// Convolution over steps, then both recurrent cells.
    struct Rows {
        input: [6, 5],
        conv: conv1d(4, kernel = 3, padding = 1), relu,
        rnn: lstm(6),
        gru1: gru(5),
        last,
        head: dense(3),
    }
}

network! {
    /// A pre-LN transformer block with a head at every step.
    struct Block {
        input: [8, 12],
        residual { layer_norm, attention(heads = 3, causal) },
        residual { layer_norm, dense(24), gelu, dense(12) },
        layer_norm,
        dense(5) => [8, 5],
        softmax,
    }
}

network! {
    /// Every other rank-2 form.
    struct EverySequenceLayer {
        input: [8, 4],
        pos: positional,
        c: conv1d(6, kernel = 3, padding = same, bias = false), tanh,
        max_pool(2) => [4, 6],
        p: parallel(add) { branch { dense(5) } branch { gru(5) } },
        r: residual(projection) { lstm(3), sigmoid },
        softmax,
        avg_pool(2, stride = 1) => [3, 3],
        ln: layer_norm,
        att: attention(heads = 3),
        flatten => [9],
        head: dense(2),
    }
}

network! {
    /// A strided, dilated convolution and the mean over steps.
    struct ConvMean {
        input: [7, 3],
        gelu,
        conv1d(3 -> 5, kernel = 2, stride = 2, padding = 1, dilation = 2) => [4, 5],
        global_avg_pool => [5],
        dense(2),
    }
}

network! {
    /// A small language model on token ids.
    struct TinyLm {
        input: tokens[6],
        embed: embedding(11 -> 8),
        pos: positional,
        residual { layer_norm, attention(heads = 2, causal) },
        rnn: gru(8),
        head: dense(11),
    }
}

#[test]
fn recurrent_and_convolution_over_steps() {
    let mut net = Rows::<f32>::init(Init::Auto, 20);
    perturb(&mut net, 20);
    check(&net, &random_batch::<30>(3, 21));
}

#[test]
fn transformer_block_with_causal_attention() {
    let mut net = Block::<f32>::init(Init::Auto, 22);
    perturb(&mut net, 22);
    check(&net, &random_batch::<96>(2, 23));
}

#[test]
fn every_other_sequence_layer() {
    let mut net = EverySequenceLayer::<f32>::init(Init::Auto, 24);
    perturb(&mut net, 24);
    check(&net, &random_batch::<32>(3, 25));
    let mut mean = ConvMean::<f32>::init(Init::Auto, 26);
    perturb(&mut mean, 26);
    check(&mean, &random_batch::<21>(2, 27));
}

#[test]
fn token_ids_through_embedding() {
    let mut net = TinyLm::<f32>::init(Init::Auto, 28);
    perturb(&mut net, 28);
    let ids = Batch::<f32, 6>::from_fn(3, |i, j| ((i * 5 + j * 3) % 11) as f32);
    check(&net, &ids);
}
