// Mistakes in the arguments of the sequence layers.
use staticnet::prelude::*;

network! {
    struct Sized<const H: usize> {
        input: [16, 32],
        dense(H),
    }
}

network! {
    struct GruBias {
        input: [16, 32],
        gru(8, bias = false),
        last(1),
    }
}

network! {
    struct AttentionTypo {
        input: [16, 32],
        attention(head = 4),
        lstm,
    }
}

fn main() {}
