// `attention` splits the features among its heads: the head count must divide them.
use staticnet::prelude::*;

network! {
    struct Indivisible {
        input: [16, 30],
        att: attention(heads = 4, causal),
        dense(10),
    }
}

network! {
    struct NoHeads {
        input: [16, 32],
        attention,
    }
}

network! {
    struct PositionalHeads {
        input: [16, 32],
        attention(4),
    }
}

fn main() {}
