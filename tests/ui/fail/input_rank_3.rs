use staticnet::prelude::*;

network! {
    struct Cnn {
        input: [1, 28, 28],
        dense(10),
    }
}

fn main() {}
