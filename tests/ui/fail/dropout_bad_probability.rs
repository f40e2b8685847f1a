// A dropout probability lies in [0, 1): 1 would scale the kept values by infinity.
use staticnet::prelude::*;

network! {
    struct Mlp {
        input: [4],
        dropout(1.0),
        dropout(-0.1),
        dropout(1.5),
        dropout(1),
        dropout(x),
        dropout(0.1, 0.2),
    }
}

network! {
    struct Cnn {
        input: [1, 4, 4],
        conv2d(2, kernel = 3),
        drop: dropout(1.0),
        flatten,
    }
}

fn main() {}
