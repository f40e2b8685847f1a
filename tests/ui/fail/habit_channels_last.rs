// A channels-last input (Keras' default layout): samples are [C, H, W] here.
use staticnet::prelude::*;

network! {
    struct ChannelsLast { input: [28, 28, 1], conv2d(32, kernel = 3), relu }
}

network! {
    struct DeclaredChannels { input: [32, 32, 3], conv2d(3 -> 16, kernel = 3), relu }
}

fn main() {}
