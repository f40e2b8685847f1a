use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        fc1: ,
        => [4],
        type: dense(3),
        dense(-),
        dense(4 ->),
        dense([3]),
        input,
        output [2],
    }
}

fn main() {}
