// The producer is unnamed: it is described by its resolved kind and position.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [784],
        dense(256),
        relu,
        dense(128 -> 10),
    }
}

fn main() {}
