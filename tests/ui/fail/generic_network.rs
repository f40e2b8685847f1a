use staticnet::prelude::*;

network! {
    struct Mlp<T: Float> {
        input: [4],
        dense(2),
    }
}

fn main() {}
