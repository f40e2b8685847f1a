//! The checkpoint loader (`persist::load_checkpoint_from_bytes`) into a fixed
//! CNN with batch norm and dropout, and `Trainer::resume_from_bytes` with
//! Adam and SGD, then a short `fit` from whatever state resumed. A refused
//! checkpoint must leave the network, its generators and the trainer unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staticnet::prelude::*;
use staticnet_fuzz::{state, tiny_dataset, FuzzCnn};

fn resume<O: Optimizer<f32>>(optimizer: O, data: &[u8]) {
    let mut net = FuzzCnn::<f32>::new(2);
    let before = state(&mut net);
    let mut trainer = Trainer::new(optimizer).epochs(2).batch_size(2).verbose(false);
    match trainer.resume_from_bytes(&mut net, data) {
        Ok(()) => {
            // Whatever resumed (any epoch, step, learning rate, moment) trains or fails cleanly.
            let _ = trainer.fit(&mut net, &SoftmaxCrossEntropy, &tiny_dataset(), None);
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
