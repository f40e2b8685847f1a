//! Compile-time probe: 16 conv layers and 4 dense layers (a VGG-like stack on
//! 32×32 RGB). Built by `bench/compile_times.sh`; running it does one
//! training step so the whole generated code is instantiated.

use staticnet::prelude::*;

network! {
    /// 16 × conv2d(3×3, padding 1) with ReLU, three 2×2 max-pools, then 4 dense layers.
    pub struct Deep {
        input: [3, 32, 32],
        conv1: conv2d(16, kernel = 3, padding = 1), relu,
        conv2: conv2d(16, kernel = 3, padding = 1), relu,
        conv3: conv2d(32, kernel = 3, padding = 1), relu,
        conv4: conv2d(32, kernel = 3, padding = 1), relu,
        max_pool(2),
        conv5: conv2d(32, kernel = 3, padding = 1), relu,
        conv6: conv2d(32, kernel = 3, padding = 1), relu,
        conv7: conv2d(64, kernel = 3, padding = 1), relu,
        conv8: conv2d(64, kernel = 3, padding = 1), relu,
        max_pool(2),
        conv9: conv2d(64, kernel = 3, padding = 1), relu,
        conv10: conv2d(64, kernel = 3, padding = 1), relu,
        conv11: conv2d(64, kernel = 3, padding = 1), relu,
        conv12: conv2d(64, kernel = 3, padding = 1), relu,
        max_pool(2),
        conv13: conv2d(128, kernel = 3, padding = 1), relu,
        conv14: conv2d(128, kernel = 3, padding = 1), relu,
        conv15: conv2d(128, kernel = 3, padding = 1), relu,
        conv16: conv2d(128, kernel = 3, padding = 1), relu,
        global_avg_pool,
        fc1: dense(256), relu,
        fc2: dense(128), relu,
        fc3: dense(64), relu,
        head: dense(10),
    }
}

fn main() {
    let mut net = Deep::new(0);
    let x = Batch::<f32, { 3 * 32 * 32 }>::from_fn(2, |i, j| ((i + j) % 7) as f32 / 7.0);
    let labels = vec![1, 2];
    let mut trace = <Deep as Network<f32, 3072, 10>>::Trace::default();
    let mut grads = net.zero_gradients();
    let mut d_out = Batch::<f32, 10>::zeros(0);
    let out = net.forward_train(&x, &mut trace);
    let loss = SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d_out).unwrap();
    net.backward(&x, &mut trace, &d_out, &mut grads, None);
    Sgd::new(0.01).step(&mut net, &grads).unwrap();
    println!("{} parameters, loss {loss}", Deep::PARAM_COUNT);
}
