// `fc2` declares 128 inputs, but the named layer before it produces 256.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [784],
        fc1: dense(256), relu,
        fc2: dense(128 -> 10),
    }
}

fn main() {}
