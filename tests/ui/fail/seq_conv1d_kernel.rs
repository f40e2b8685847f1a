// A `conv1d` kernel must fit the padded steps; `padding = same` needs an odd kernel span.
use staticnet::prelude::*;

network! {
    struct TooLong {
        input: [4, 3],
        c: conv1d(8, kernel = 5),
    }
}

network! {
    struct DilatedTooLong {
        input: [4, 3],
        conv1d(8, kernel = 3, dilation = 2),
    }
}

network! {
    struct EvenSame {
        input: [10, 3],
        conv1d(8, kernel = 4, padding = same),
    }
}

network! {
    struct TwoDimensionalKernel {
        input: [10, 3],
        conv1d(8, kernel = [3, 3]),
    }
}

fn main() {}
