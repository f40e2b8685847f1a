//! The weights file: [`save`] and [`load_into`], and their in-memory forms.

use super::file::{read_file, write_atomic};
use super::tensors::{
    check_expected, is_num_batches_tracked, network_entries, network_tensors, serialize, Stored,
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
pub fn save<T: Float, N: Params<T>>(net: &N, path: impl AsRef<Path>) -> Result<()> {
    write_atomic(path, &to_bytes(net)?)
}

/// The safetensors bytes [`save`] writes, for tests, fuzzers and transports
/// that need no file. The same network always gives the same bytes.
pub fn to_bytes<T: Float, N: Params<T>>(net: &N) -> Result<Vec<u8>> {
    serialize(network_tensors(net)?, BTreeMap::from([("format".to_string(), "pt".to_string())]))
}

/// Loads the parameters and buffers of `net` from the safetensors file at `path`.
///
/// Every tensor of the network must be present with its dtype and shape, and the
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
