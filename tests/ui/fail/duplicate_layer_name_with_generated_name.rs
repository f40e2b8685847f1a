// An unnamed layer is named `{kind}_{position}`; a user name can collide with it.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        relu_1: dense(8),
        relu,
        dense(2),
    }
}

fn main() {}
