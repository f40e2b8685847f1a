use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4] extra,
        dense(8) relu,
        fc2: dense(4) => [4] [4],
        head: dense(2) + 1,
    }
}

fn main() {}
