//! The IDX reader (`data::idx::parse`, and `data::idx::read` for gzip input),
//! then the MNIST converters on whatever parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staticnet::data::idx::{self, IdxArray, IdxData};
use staticnet::data::mnist;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn check(array: &IdxArray, path: &Path) {
    let len = match &array.data {
        IdxData::U8(v) => v.len(),
        IdxData::I8(v) => v.len(),
        IdxData::I16(v) => v.len(),
        IdxData::I32(v) => v.len(),
        IdxData::F32(v) => v.len(),
        IdxData::F64(v) => v.len(),
    };
    assert_eq!(array.dims.iter().product::<usize>(), len, "dims {:?} vs {len} values", array.dims);
    let _ = mnist::images_from_idx::<f32>(array, path);
    let _ = mnist::labels_from_idx(array, path);
}

/// A scratch file per fuzzing process, for the gzip path, which only `read`
/// takes; in memory (`/dev/shm`) where there is one, as a disk file costs
/// milliseconds per input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        dir.join(format!("staticnet-fuzz-idx-{}.gz", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.idx");
    match idx::parse(data, path) {
        Ok(array) => check(&array, path),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if data.starts_with(&[0x1f, 0x8b]) {
        let file = scratch();
        if std::fs::write(file, data).is_ok() {
            match idx::read(file) {
                Ok(array) => check(&array, file),
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
});
