//! No heap allocation per token once a decoder exists: its cache is allocated
//! for the whole window when it is made. Alone in its binary (one `#[test]`),
//! since the counting allocator counts every thread. In f32, the type networks
//! ship in, like tests/allocations.rs (f64 products go through matrixmultiply,
//! which allocates its packing buffers per product).

use staticnet::prelude::*;

#[path = "support/counting_allocator.rs"]
mod counting_allocator;
use counting_allocator::allocations_in;

network! {
    /// Issue 19's `CharGpt`, smaller.
    struct Gpt {
        input: tokens[16],
        embed: embedding(11 -> 32),
        pos: positional,
        att1: residual { layer_norm, attention(heads = 4, causal) },
        ff1: residual { layer_norm, dense(128), gelu, dense(32) },
        att2: residual { layer_norm, attention(heads = 4, causal) },
        ff2: residual { layer_norm, dense(128), gelu, dense(32) },
        layer_norm,
        head: dense(11),
    }
}

network! {
    /// Issue 19's LSTM language model, smaller, with a GRU after it.
    struct Rnn { input: tokens[16], embed: embedding(11 -> 16), rnn: lstm(64), gru: gru(32), head: dense(11) }
}

#[test]
fn decoding_a_token_allocates_nothing() {
    let net = Gpt::<f32>::init(Init::Auto, 1);
    let mut decoder = net.decoder().expect("a causal token network decodes");
    decoder.push(3).unwrap();
    decoder.reset();
    let allocations = allocations_in(|| {
        for p in 0..16 {
            decoder.push(p % 11).unwrap();
        }
    });
    assert_eq!(allocations, 0, "allocations while decoding 16 tokens");
    let net = Rnn::<f32>::init(Init::Auto, 1);
    let mut decoder = net.decoder().expect("a recurrent token network decodes");
    decoder.push(3).unwrap();
    decoder.reset();
    let allocations = allocations_in(|| {
        for p in 0..16 {
            decoder.push(p % 11).unwrap();
        }
    });
    assert_eq!(allocations, 0, "allocations while decoding 16 tokens through an LSTM and a GRU");
}
