// Blocks on a sequence: `parallel(concat)` does not join rank-2 shapes, and a
// projection is a dense layer at every step, so it cannot change the steps.
use staticnet::prelude::*;

network! {
    struct Concat {
        input: [8, 4],
        p: parallel(concat) {
            branch { dense(2) }
            branch { lstm(2) }
        },
    }
}

network! {
    struct ProjectionOverSteps {
        input: [8, 4],
        r: residual(projection) { max_pool(2) },
    }
}

fn main() {}
