// `=> [n]` after a named dense, an unnamed activation and an unnamed dense.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        fc1: dense(8) => [9],
        relu => [7],
        dense(2) => [3],
        act: sigmoid => [1],
    }
}

fn main() {}
