//! The checkpoint loader (`persist::load_checkpoint_from_bytes`) into a fixed
//! CNN with batch norm and dropout, and `Trainer::resume_from_bytes` with
//! Adam and SGD, then a short `fit` from whatever state resumed. A refused
//! checkpoint must leave the network, its generators and the trainer unchanged;
//! training from an accepted one must never make finite weights non-finite (a
//! hostile optimizer state is refused when loading, and a step that would make
//! a weight non-finite is undone).
#![no_main]

use libfuzzer_sys::fuzz_target;
use staticnet::prelude::*;
use staticnet_fuzz::{params_finite, state, tiny_dataset, FuzzCnn};

fn resume<O: Optimizer<f32>>(optimizer: O, data: &[u8]) {
    let mut net = FuzzCnn::<f32>::new(2);
    let before = state(&mut net);
    let mut trainer = Trainer::new(optimizer).epochs(2).batch_size(2).verbose(false);
    match trainer.resume_from_bytes(&mut net, data) {
        Ok(()) => {
            // Whatever resumed (any epoch, step, learning rate, moment) trains or fails cleanly,
            // and never poisons weights that were finite.
            let finite = params_finite(&net);
            let fit = trainer.fit(&mut net, &SoftmaxCrossEntropy, &tiny_dataset(), None);
            assert!(
                !finite || params_finite(&net),
                "training after resuming made the weights non-finite: {fit:?}"
            );
        }
        Err(e) => {
            let _ = e.to_string();
            assert_eq!(state(&mut net), before, "a refused checkpoint changed the network: {e}");
            assert_eq!((trainer.completed_epochs(), trainer.steps()), (0, 0));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut net = FuzzCnn::<f32>::new(1);
    let before = state(&mut net);
    match persist::load_checkpoint_from_bytes(&mut net, data) {
        Ok(training) => {
            let _ = format!("{training:?}");
        }
        Err(e) => {
            let _ = e.to_string();
            assert_eq!(state(&mut net), before, "a refused checkpoint changed the network: {e}");
        }
    }
    resume(Adam::new(1e-3), data);
    resume(Sgd::new(0.1), data);
});
