//! The PNG reader (`data::image::decode_png`), then the conversion to an MNIST sample.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staticnet::data::image::decode_png;
use staticnet::data::mnist;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.png");
    match decode_png(data, path) {
        Ok(image) => {
            assert_eq!(image.pixels.len(), image.width * image.height);
            let _ = mnist::sample_from_image::<f32>(&image, path);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
