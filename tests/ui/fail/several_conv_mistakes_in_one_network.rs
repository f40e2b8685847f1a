// Independent convolution mistakes are all reported by one compile, each once:
// after a layer that cannot be built the shape is unknown, and nothing that
// depends on it is reported again.
use staticnet::prelude::*;

network! {
    struct Cnn {
        input: [3, 32, 32],
        conv1: conv2d(1 -> 16, kernel = 3), relu,
        conv2: conv2d(32, kernel = 3, stride = 2, padding = same),
        max_pool(2),
        conv3: conv2d(64, kernel = 3, groups = 2),
        batch_norm(momentum = 1.5),
        dropout(1.0),
        flatten => [10],
        dense(10),
    }
}

network! {
    /// The channel mismatch does not stop the shapes: the layer is checked
    /// with the channels it is given, and later layers against its output.
    struct Small {
        input: [1, 8, 8],
        conv2d(8 -> 16, kernel = 3),
        max_pool(2) => [16, 2, 2],
        conv2d(16 -> 4, kernel = 3, padding = same), relu,
        dense(10),
    }
}

network! {
    /// After a layer that cannot be built nothing downstream is reported:
    /// only the kernel is an error here.
    struct Cascade {
        input: [1, 8, 8],
        conv2d(8, kernel = 9),
        max_pool(2) => [8, 4, 4],
        conv2d(16, kernel = 3) => [16, 4, 4],
        max_pool(4),
        dense(10),
    }
}

fn main() {}
