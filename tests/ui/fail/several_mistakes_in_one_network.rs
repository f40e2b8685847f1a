// Independent mistakes are all reported by one compile, each once: the first
// dense mismatch does not spill into the layers after it.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dense(3 -> 5), relu,
        dense(9 -> 2), relu(1),
        output: [2],
    }
}

fn main() {}
