// Padding is a size, `[height, width]`, `same` or `valid`.
use staticnet::prelude::*;

network! {
    struct Cnn {
        input: [1, 8, 8],
        conv2d(4, kernel = 3, padding = full),
        conv2d(4, kernel = 3, padding = Same),
        conv2d(4, kernel = 3, padding = "same"),
        conv2d(4, kernel = 3, padding = -1),
        conv2d(4, kernel = 3, padding = [same, 1]),
        conv2d(4, kernel = 3, padding = 1.5),
    }
}

fn main() {}
