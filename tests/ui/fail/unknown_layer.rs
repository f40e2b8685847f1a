use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        desne(8),
        rlu,
        conv2d(3),
    }
}

fn main() {}
