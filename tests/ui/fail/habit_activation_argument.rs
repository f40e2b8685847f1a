// Keras' `activation = "relu"`: in `network!` an activation is a layer of its own.
use staticnet::prelude::*;

network! {
    struct Mlp { input: [784], dense(128, activation = "relu"), dense(10) }
}

fn main() {}
