// `padding = same` keeps the size only with stride 1, as in PyTorch.
use staticnet::prelude::*;

network! {
    struct Strided {
        input: [1, 8, 8],
        conv2d(4, kernel = 3, stride = 2, padding = same),
    }
}

network! {
    struct StridedOneAxis {
        input: [1, 8, 8],
        conv2d(4, padding = same, kernel = 3, stride = [1, 2]),
    }
}

fn main() {}
