// `=> [steps, features]` and `output:` on a sequence network name both shapes.
use staticnet::prelude::*;

network! {
    struct Rows {
        input: [28, 28],
        conv: conv1d(32, kernel = 3) => [28, 32],
        rnn: lstm(64) => [26, 32],
        output: [28, 64],
    }
}

fn main() {}
