//! The safetensors weights loader (`persist::load_from_bytes`) into a fixed
//! CNN with batch norm and dropout, in f32 and f64. A refused file must leave
//! the network unchanged; an accepted one must save and load back to the same
//! values and run inference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staticnet::prelude::*;
use staticnet_fuzz::{values, FuzzCnn, IN};

fn load<T: Float>(data: &[u8]) {
    let mut net = FuzzCnn::<T>::init(Init::Auto, 1);
    let before = values(&net);
    match persist::load_from_bytes(&mut net, data) {
        Ok(()) => {
            let bytes = match persist::to_bytes(&net) {
                Ok(b) => b,
                Err(e) => panic!("a loaded network does not save: {e}"),
            };
            let mut again = FuzzCnn::<T>::zeros();
            if let Err(e) = persist::load_from_bytes(&mut again, &bytes) {
                panic!("saved bytes do not load: {e}");
            }
            assert_eq!(values(&again), values(&net), "save and load differ");
            let _ = net.forward(&Batch::<T, IN>::from_element(2, T::cast(0.5)));
        }
        Err(e) => {
            let _ = e.to_string();
            assert_eq!(values(&net), before, "a refused file changed the network: {e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    load::<f32>(data);
    load::<f64>(data);
});
