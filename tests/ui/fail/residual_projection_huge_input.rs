// A projection over a huge height is refused at once (it once searched every stride up to the height).
use staticnet::prelude::*;

network! {
    struct N { input: [1, 1000000000000, 1], r: residual(projection) { conv2d(2, kernel = [3, 1]) } }
}

fn main() {}
