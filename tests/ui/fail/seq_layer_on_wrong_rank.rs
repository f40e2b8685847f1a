// The sequence layers need a rank-2 input [steps, features]; the message names the shape they got.
use staticnet::prelude::*;

network! {
    struct LstmOnVector {
        input: [784],
        rnn: lstm(64),
    }
}

network! {
    struct GruOnImage {
        input: [1, 28, 28],
        gru(32),
    }
}

network! {
    struct Conv1dAfterLast {
        input: [28, 28],
        last,
        conv1d(8, kernel = 3),
    }
}

network! {
    struct LastOnVector {
        input: [10],
        last,
    }
}

network! {
    struct AttentionOnVector {
        input: [64],
        attention(heads = 4),
    }
}

network! {
    struct PositionalOnImage {
        input: [3, 8, 8],
        pos: positional,
    }
}

fn main() {}
