//! The weights file: [`save`] and [`load_into`], and their in-memory forms.

use super::file::{read_file, write_atomic};
use super::tensors::{
    check_expected, is_num_batches_tracked, network_entries, network_tensors, network_tensors_as, serialize,
    Stored,
};
use super::{MEMORY, OPTIMIZER_PREFIX};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::params::Params;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// Saves every parameter and buffer of `net` to a safetensors file at `path`,
/// atomically (see the [module documentation](super) for names, layout and the
/// atomic write).
///
/// # Examples
///
/// ```
/// use staticnet::prelude::*;
///
/// network! { struct Mlp { input: [4], fc1: dense(8), relu, head: dense(3) } }
///
/// let path = std::env::temp_dir().join("staticnet-doc-save.safetensors");
/// let net = Mlp::new(3);
/// persist::save(&net, &path)?; // or net.save(&path)
/// let mut other = Mlp::<f32>::zeros();
/// persist::load_into(&mut other, &path)?; // or Mlp::load(&path)
/// let x = Batch::<f32, 4>::from_element(1, 0.5);
/// assert_eq!(net.forward(&x), other.forward(&x));
/// // A file of another network is refused, naming what does not fit, and changes nothing.
/// network! { struct Wider { input: [4], fc1: dense(16), relu, head: dense(3) } }
/// assert!(Wider::load(&path).is_err());
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), staticnet::Error>(())
/// ```
pub fn save<T: Float, N: Params<T>>(net: &N, path: impl AsRef<Path>) -> Result<()> {
    write_atomic(path, &to_bytes(net)?)
}

/// The safetensors bytes [`save`] writes, for tests, fuzzers and transports
/// that need no file. The same network always gives the same bytes.
pub fn to_bytes<T: Float, N: Params<T>>(net: &N) -> Result<Vec<u8>> {
    serialize(network_tensors(net)?, BTreeMap::from([("format".to_string(), "pt".to_string())]))
}

/// The float type [`save_as`] stores a network's tensors in.
///
/// Loading accepts all four whatever the network's scalar: an f32 network loads
/// F16, BF16 and F64 files (F64 rounded to nearest), an f64 network F32, F16 and BF16 ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// IEEE single precision, 4 bytes (what an f32 network saves).
    F32,
    /// IEEE double precision, 8 bytes (what an f64 network saves).
    F64,
    /// IEEE half precision, 2 bytes: 11 significant bits, finite up to 65504.
    F16,
    /// bfloat16, 2 bytes: f32's exponent range with 8 significant bits.
    BF16,
}

impl Dtype {
    fn safetensors(self) -> safetensors::Dtype {
        match self {
            Dtype::F32 => safetensors::Dtype::F32,
            Dtype::F64 => safetensors::Dtype::F64,
            Dtype::F16 => safetensors::Dtype::F16,
            Dtype::BF16 => safetensors::Dtype::BF16,
        }
    }
}

/// [`save`] with every float tensor stored as `dtype` (rounded to nearest, ties
/// to even): `Dtype::BF16` halves an f32 network's file. PyTorch loads it with
/// `load_state_dict`, which converts to the module's dtype; so does [`load_into`].
///
/// ```
/// # fn main() -> staticnet_core::Result<()> {
/// use staticnet_core::init::{seeded_rng, Init};
/// use staticnet_core::layers::Dense;
/// use staticnet_core::persist::{self, Dtype};
/// let layer = Dense::<f32, 4, 3>::new(true, Init::Auto, &mut seeded_rng(1));
/// let path = std::env::temp_dir().join(format!("dense-bf16-{}.safetensors", std::process::id()));
/// persist::save_as(&layer, &path, Dtype::BF16)?;
/// let mut back = Dense::<f32, 4, 3>::zeros(true);
/// persist::load_into(&mut back, &path)?;
/// let (w, b) = (layer.weight_at(0, 0), back.weight_at(0, 0));
/// assert!(w != b && (w - b).abs() <= w.abs() / 256.0);
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
pub fn save_as<T: Float, N: Params<T>>(net: &N, path: impl AsRef<Path>, dtype: Dtype) -> Result<()> {
    write_atomic(path, &to_bytes_as(net, dtype)?)
}

/// The bytes [`save_as`] writes.
pub fn to_bytes_as<T: Float, N: Params<T>>(net: &N, dtype: Dtype) -> Result<Vec<u8>> {
    serialize(
        network_tensors_as(net, dtype.safetensors())?,
        BTreeMap::from([("format".to_string(), "pt".to_string())]),
    )
}

/// Loads the parameters and buffers of `net` from the safetensors file at `path`.
///
/// Every tensor of the network must be present with its shape and a float dtype
/// (F32, F64, F16 or BF16, converted to the network's scalar), and the
/// file must hold nothing else, except `*.num_batches_tracked` of batch-norm
/// layers (ignored) and, in a checkpoint, the `optimizer.*` tensors (ignored).
///
/// Errors: [`Error::Io`] if the file cannot be read (or is a directory),
/// [`Error::Format`] if it is not a valid safetensors file (empty, truncated,
/// corrupted), [`Error::Mismatch`] listing every tensor that does not fit.
/// On any error `net` is unchanged.
pub fn load_into<T: Float, N: Params<T>>(net: &mut N, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    load_from_bytes_at(net, &bytes, path)
}

/// [`load_into`] from bytes in memory (errors name the path `<memory>`).
pub fn load_from_bytes<T: Float, N: Params<T>>(net: &mut N, bytes: &[u8]) -> Result<()> {
    load_from_bytes_at(net, bytes, Path::new(MEMORY))
}

fn load_from_bytes_at<T: Float, N: Params<T>>(net: &mut N, bytes: &[u8], path: &Path) -> Result<()> {
    let stored = Stored::parse(bytes, path)?;
    let expected = network_entries(net);
    let mut problems = Vec::new();
    check_expected::<T>(&stored, &expected, &mut problems);
    let known: HashSet<&str> = expected.iter().map(|e| e.name.as_str()).collect();
    let checkpoint = stored.meta("staticnet.kind") == Some("checkpoint");
    for name in stored.names() {
        let ignored =
            is_num_batches_tracked(name, &known) || (checkpoint && name.starts_with(OPTIMIZER_PREFIX));
        if !known.contains(name) && !ignored {
            problems.push(stored.unexpected(name));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Mismatch { path: path.to_path_buf(), problems });
    }
    stored.apply(net);
    Ok(())
}
