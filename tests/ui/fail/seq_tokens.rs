// Token ids go into `embedding(V -> D)` and nothing else; an embedding needs token ids.
use staticnet::prelude::*;

network! {
    struct DenseOnIds {
        input: tokens[16],
        fc: dense(8),
    }
}

network! {
    struct EmbeddingOnFloats {
        input: [16],
        embed: embedding(63 -> 8),
    }
}

network! {
    struct NoVocabulary {
        input: tokens[16],
        embed: embedding(8),
    }
}

network! {
    struct TwoDimensionalTokens {
        input: tokens[16, 2],
        embed: embedding(63 -> 8),
    }
}

fn main() {}
