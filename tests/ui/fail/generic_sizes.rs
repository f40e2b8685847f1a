// A size parameter may only stand alone as the features of a rank-1 shape:
// any size computed from it would be arithmetic in a type, which stable Rust
// does not allow. Its shapes equal only themselves.
use staticnet::prelude::*;

network! {
    struct Channels<const C: usize> { input: [C, 28, 28], conv2d(8, kernel = 3) }
}

network! {
    struct Filters<const C: usize> { input: [1, 28, 28], conv2d(C, kernel = 3), flatten, dense(2) }
}

network! {
    struct Window<const K: usize> { input: [1, 8, 8], max_pool(K), flatten, dense(2) }
}

network! {
    struct Concat<const H: usize> {
        input: [4],
        join: parallel(concat) { branch { dense(H) } branch { dense(3) } },
        dense(2),
    }
}

network! {
    struct Skip<const H: usize, const W: usize> { input: [H], block: residual { dense(W), relu }, dense(2) }
}

network! {
    struct Declared<const H: usize> { input: [4], fc: dense(H) => [128], dense(2), output: [H] }
}

fn main() {}
