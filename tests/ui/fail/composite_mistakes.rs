// Mistakes in residual blocks, parallel branches and nested networks: each is
// one error naming the block, its branches and their shapes.
use staticnet::prelude::*;

network! {
    struct ResidualChangesShape {
        input: [8, 6, 6],
        block: residual { conv2d(16, kernel = 3, padding = same) },
        global_avg_pool,
        dense(2),
    }
}

network! {
    struct NoProjectionPossible {
        input: [16],
        block: residual(projection) { dense(8), relu, dense(8) => [8] },
        down: residual(projection) { conv2d(4, kernel = 1) },
    }
}

network! {
    struct Branches {
        input: [3, 8, 8],
        cat: parallel(concat) {
            branch { conv2d(4, kernel = 3, padding = 1) }
            branch { conv2d(4, kernel = 3) }
        },
        sum: parallel(add) { branch { dense(3) } branch { dense(4) } },
        one: parallel(add) { branch { relu } },
        how: parallel { branch { relu } branch { tanh } },
        bad: residual(identity) { relu },
        empty: residual { },
    }
}

network! {
    struct Inner { input: [4], dense(2) }
}

network! {
    struct Outer {
        input: [4],
        undeclared: Inner,
        dense(3),
    }
}

fn main() {}
