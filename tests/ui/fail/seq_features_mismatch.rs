// A layer that declares its input features (`dense(30 -> 64)`) must get them at every step.
use staticnet::prelude::*;

network! {
    struct DenseMismatch {
        input: [16, 32],
        fc: dense(30 -> 64),
    }
}

network! {
    struct LstmMismatch {
        input: [16, 32],
        lstm(30 -> 64),
    }
}

network! {
    struct Conv1dMismatch {
        input: [16, 32],
        conv1d(30 -> 8, kernel = 3),
    }
}

fn main() {}
