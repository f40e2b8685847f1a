// 2^32 · 2^32 weights overflow `usize` on a 64-bit target.
use staticnet::prelude::*;

network! {
    struct Huge {
        input: [4294967296],
        dense(4294967296),
        dense(4294967296),
    }
}

fn main() {}
