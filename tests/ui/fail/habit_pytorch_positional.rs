// PyTorch's `nn.Conv2d(1, 32, 3)` and `nn.Linear(784, 128)` written positionally.
use staticnet::prelude::*;

network! {
    struct TorchStyle { input: [1, 28, 28], conv2d(1, 32, 3), relu }
}

network! {
    struct TorchMlp { input: [784], dense(784, 128), relu, dense(10) }
}

fn main() {}
