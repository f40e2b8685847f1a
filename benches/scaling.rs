//! How much faster a training step is on 2 threads than on 1, measured so
//! that the machine's drift cancels out: windows of steps on 1 and on 2 threads
//! alternate in one process, and the ratio is taken between neighbouring
//! windows. (Criterion times one thread count after the other, minutes
//! apart on a busy host; on the shared 2-vCPU machines this was written on,
//! the speed of a core moved by up to 2× over such spans.)
//!
//! `cargo bench --bench scaling` prints, for mlp_train_b128 and
//! cnn_train_b64, the median µs per step of each thread count and the median
//! (and quartiles) of the paired ratios.

use staticnet::prelude::*;
use std::hint::black_box;
use std::time::Instant;

network! {
    struct Mlp { input: [784], dense(256), relu, dense(128), relu, dense(10) }
}

network! {
    struct Cnn { input: [1, 28, 28], conv2d(8, kernel = 3), relu, max_pool(2), flatten, dense(10) }
}

/// Alternating windows of `steps` training steps on 1 and 2 threads.
fn scaling<N, const IN: usize, const OUT: usize>(name: &str, mut net: N, batch: usize, steps: usize)
where
    N: Network<f32, IN, OUT>,
{
    let (x, labels) = common::batch::<IN>(batch, OUT);
    let mut trace = N::Trace::default();
    let mut grads = net.zero_gradients();
    let mut d_out = Batch::<f32, OUT>::zeros(0);
    let mut sgd = Sgd::new(0.01);
    let mut window = |threads: usize, steps: usize| {
        staticnet::set_threads(threads);
        let start = Instant::now();
        for _ in 0..steps {
            let out = net.forward_train(black_box(&x), &mut trace);
            let loss = SoftmaxCrossEntropy.loss_and_grad(out, &labels, &mut d_out).unwrap();
            net.backward(&x, &mut trace, &d_out, &mut grads, None);
            sgd.step(&mut net, &grads).unwrap();
            black_box(loss);
        }
        start.elapsed().as_secs_f64() * 1e6 / steps as f64
    };
    window(1, steps);
    window(2, steps);
    let (mut one, mut two, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..60 {
        // Alternate which goes first, so neither always follows the other.
        let (a, b) = if round % 2 == 0 {
            (window(1, steps), window(2, steps))
        } else {
            let b = window(2, steps);
            (window(1, steps), b)
        };
        one.push(a);
        two.push(b);
        ratios.push(a / b);
    }
    staticnet::set_threads(1);
    let (one, two, ratios) = (quartiles(one), quartiles(two), quartiles(ratios));
    println!(
        "{name}: 1 thread {:.1} µs, 2 threads {:.1} µs per step (medians); 2 threads vs 1: {:.2}× (quartiles {:.2}–{:.2}×)",
        one[1], two[1], ratios[1], ratios[0], ratios[2]
    );
}

fn quartiles(mut v: Vec<f64>) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    [v[v.len() / 4], v[v.len() / 2], v[3 * v.len() / 4]]
}

fn main() {
    // About 50 ms per window.
    scaling("mlp_train_b128", Mlp::new(0), 128, 50);
    scaling("cnn_train_b64", Cnn::new(0), 64, 70);
}
