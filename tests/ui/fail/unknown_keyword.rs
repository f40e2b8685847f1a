use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense(3, biass = false),
        dense(3, activation = relu),
        leaky_relu(slope = 0.1),
    }
}

fn main() {}
