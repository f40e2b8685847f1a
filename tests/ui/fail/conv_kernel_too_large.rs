// A kernel must fit the input after padding: checked per axis, with the
// kernel's dilated extent `d·(k − 1) + 1` when a dilation is given.
use staticnet::prelude::*;

network! {
    struct Plain {
        input: [1, 4, 4],
        conv2d(3, kernel = 5),
    }
}

network! {
    struct TooWideOnly {
        input: [1, 8, 4],
        wide: conv2d(3, kernel = [3, 5]),
    }
}

network! {
    struct PaddingIsCounted {
        input: [2, 3, 3],
        conv2d(2 -> 4, kernel = 3, padding = 1),
        c2: conv2d(4, kernel = 6, padding = [0, 2]),
    }
}

network! {
    struct Dilated {
        input: [1, 4, 4],
        conv2d(3, kernel = 3, dilation = 2),
    }
}

network! {
    struct DilatedOneAxis {
        input: [1, 6, 6],
        conv1: conv2d(3, kernel = 3), relu,
        conv2: conv2d(3, kernel = [2, 3], dilation = [1, 2]),
    }
}

fn main() {}
