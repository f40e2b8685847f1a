// The first layer declares 100 inputs, but `input:` gives 784.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [784],
        head: dense(100 -> 10, bias = false),
    }
}

fn main() {}
