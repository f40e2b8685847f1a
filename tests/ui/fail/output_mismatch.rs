// `output:` disagrees with what the last layer gives.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        fc1: dense(8), relu,
        head: dense(2),
        output: [3],
    }
}

fn main() {}
