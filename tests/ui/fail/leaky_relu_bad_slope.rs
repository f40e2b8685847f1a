use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        leaky_relu(alpha),
        leaky_relu(0.1, 0.2),
        leaky_relu(alpha = 0.1, alpha = 0.2),
        leaky_relu(true),
        leaky_relu(1e999),
        leaky_relu(0.1 -> 0.2),
    }
}

fn main() {}
