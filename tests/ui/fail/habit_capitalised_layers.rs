// Keras' and PyTorch's class names: a capitalised name is a nested network, so
// each says which built-in layer was meant.
use staticnet::prelude::*;

network! {
    struct KerasStyle { input: [1, 28, 28], Conv2D(32, 3), MaxPool2D, Flatten, Dense(10) }
}

fn main() {}
