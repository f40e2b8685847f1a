//! The safetensors layer shared by weights files and checkpoints: a network's
//! expected tensors, encoding and decoding values, parsing a file and checking
//! every tensor's name, dtype and shape.

use super::MEMORY;
use crate::error::{Error, Result, TensorProblem};
use crate::float::Float;
use crate::params::{ParamPath, Params};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// A parameter or buffer of a network: its name and PyTorch shape.
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) shape: Vec<usize>,
}

impl Entry {
    pub(super) fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Every parameter, then every buffer, in visiting order.
pub(super) fn network_entries<T: Float, N: Params<T>>(net: &N) -> Vec<Entry> {
    let mut entries = param_entries(net);
    net.visit_buffers(&ParamPath::ROOT, &mut |b| {
        entries.push(Entry { name: b.name.to_string(), shape: b.shape.to_vec() })
    });
    entries
}

/// Every trainable parameter, in visiting order (the optimizer's indexing).
pub(super) fn param_entries<T: Float, N: Params<T>>(net: &N) -> Vec<Entry> {
    let mut entries = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        entries.push(Entry { name: p.name.to_string(), shape: p.shape.to_vec() })
    });
    entries
}

/// Whether `name` is `<prefix>num_batches_tracked` of a batch norm whose
/// `<prefix>running_mean` the network has.
pub(super) fn is_num_batches_tracked(name: &str, known: &HashSet<&str>) -> bool {
    name.strip_suffix("num_batches_tracked").is_some_and(|prefix| {
        (prefix.is_empty() || prefix.ends_with('.'))
            && known.contains(format!("{prefix}running_mean").as_str())
    })
}

/// An owned tensor to serialize.
pub(super) struct Tensor {
    pub(super) dtype: Dtype,
    pub(super) shape: Vec<usize>,
    pub(super) data: Vec<u8>,
}

impl Tensor {
    pub(super) fn floats<T: Float>(shape: Vec<usize>, values: &[T]) -> Self {
        Tensor { dtype: dtype_of::<T>(), shape, data: encode(values) }
    }
}

impl View for Tensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// The tensors of a weights file: parameters, buffers and, for every batch
/// norm, `num_batches_tracked` (I64 scalar 0).
pub(super) fn network_tensors<T: Float, N: Params<T>>(net: &N) -> Result<Vec<(String, Tensor)>> {
    let mut tensors = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        tensors.push((p.name.to_string(), Tensor::floats(p.shape.to_vec(), p.value)))
    });
    net.visit_buffers(&ParamPath::ROOT, &mut |b| {
        let name = b.name.to_string();
        if let Some(prefix) = name.strip_suffix("running_mean") {
            if prefix.is_empty() || prefix.ends_with('.') {
                let count =
                    Tensor { dtype: Dtype::I64, shape: Vec::new(), data: 0i64.to_le_bytes().to_vec() };
                tensors.push((format!("{prefix}num_batches_tracked"), count));
            }
        }
        tensors.push((name, Tensor::floats(b.shape.to_vec(), b.value)));
    });
    let mut seen = HashSet::new();
    for (name, _) in &tensors {
        if !seen.insert(name.as_str()) {
            return Err(Error::InvalidConfig(format!("two tensors of the network are both named `{name}`")));
        }
    }
    Ok(tensors)
}

/// safetensors bytes of `tensors` with `metadata` (one key keeps the bytes
/// deterministic; with more, the header's key order may vary, not the content).
pub(super) fn serialize(
    tensors: Vec<(String, Tensor)>,
    metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let metadata: HashMap<String, String> = metadata.into_iter().collect();
    safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| Error::format(MEMORY, format!("cannot serialize the tensors: {e}")))
}

fn dtype_of<T: Float>() -> Dtype {
    if T::DTYPE == "F64" {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

/// Little-endian bytes of `values` in `T`'s own width (F32 or F64).
fn encode<T: Float>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(values));
    match dtype_of::<T>() {
        Dtype::F64 => values.iter().for_each(|v| out.extend_from_slice(&v.as_f64().to_le_bytes())),
        // Exact: an f32 widened to f64 and back is the same f32.
        _ => values.iter().for_each(|v| out.extend_from_slice(&(v.as_f64() as f32).to_le_bytes())),
    }
    out
}

/// The inverse of [`encode`]; `bytes` holds `out.len()` values of `T`'s dtype.
pub(super) fn decode<T: Float>(bytes: &[u8], out: &mut [T]) {
    match dtype_of::<T>() {
        Dtype::F64 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = T::cast(f64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
            }
        }
        _ => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = T::cast(f64::from(f32::from_le_bytes(b.try_into().unwrap_or([0; 4]))));
            }
        }
    }
}

/// A parsed safetensors file: its validated header and its data section.
pub(super) struct Stored<'a> {
    metadata: Metadata,
    /// The tensor names, sorted.
    names: Vec<String>,
    data: &'a [u8],
}

impl<'a> Stored<'a> {
    /// Parses and validates `bytes`: the header length fits the file, the header
    /// is JSON naming dtypes, shapes and offsets that tile the data section exactly.
    pub(super) fn parse(bytes: &'a [u8], path: &Path) -> Result<Self> {
        let len = bytes.len();
        if len == 0 {
            return Err(Error::format(path, "the file is empty: not a safetensors file"));
        }
        let Some(header_len) = bytes.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes) else {
            return Err(Error::format(
                path,
                format!("{len} bytes is too short for a safetensors file, which starts with an 8-byte header length"),
            ));
        };
        if header_len > (len - 8) as u64 {
            return Err(Error::format(
                path,
                format!(
                    "the header length is {header_len} bytes but only {} bytes follow: the file is truncated or not safetensors",
                    len - 8
                ),
            ));
        }
        let (n, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;
        let data = bytes.get(8 + n..).unwrap_or_default();
        let mut names = metadata.offset_keys();
        names.sort_unstable();
        Ok(Stored { metadata, names, data })
    }

    /// The value of metadata `key`.
    pub(super) fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.metadata().as_ref()?.get(key).map(String::as_str)
    }

    /// Every metadata entry (in no particular order).
    pub(super) fn metadata(&self) -> impl Iterator<Item = (&str, &str)> {
        self.metadata.metadata().iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The tensor names in the file, sorted.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.metadata.info(name)
    }

    pub(super) fn tensor_bytes(&self, name: &str) -> Option<&'a [u8]> {
        let (start, end) = self.info(name)?.data_offsets;
        self.data.get(start..end)
    }

    pub(super) fn unexpected(&self, name: &str) -> TensorProblem {
        let (dtype, shape) = match self.info(name) {
            Some(info) => (info.dtype.to_string(), info.shape.clone()),
            None => (String::from("?"), Vec::new()),
        };
        TensorProblem::Unexpected { name: name.to_string(), dtype, shape }
    }

    /// Copies every parameter and buffer of `net` from the file; [`check_expected`] found no problem.
    pub(super) fn apply<T: Float, N: Params<T>>(&self, net: &mut N) {
        net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
            if let Some(bytes) = self.tensor_bytes(&p.name.to_string()) {
                decode(bytes, p.value);
            }
        });
        net.visit_buffers_mut(&ParamPath::ROOT, &mut |b| {
            if let Some(bytes) = self.tensor_bytes(&b.name.to_string()) {
                decode(bytes, b.value);
            }
        });
    }
}

/// Records a problem for every entry of `expected` that `stored` lacks or holds
/// with another dtype or shape.
pub(super) fn check_expected<T: Float>(
    stored: &Stored<'_>,
    expected: &[Entry],
    problems: &mut Vec<TensorProblem>,
) {
    let dtype = dtype_of::<T>();
    for entry in expected {
        let Some(info) = stored.info(&entry.name) else {
            problems.push(TensorProblem::Missing {
                name: entry.name.clone(),
                dtype: dtype.to_string(),
                shape: entry.shape.clone(),
            });
            continue;
        };
        if info.dtype != dtype {
            problems.push(TensorProblem::WrongDtype {
                name: entry.name.clone(),
                expected: dtype.to_string(),
                found: info.dtype.to_string(),
            });
        }
        if info.shape != entry.shape {
            problems.push(TensorProblem::WrongShape {
                name: entry.name.clone(),
                expected: entry.shape.clone(),
                found: info.shape.clone(),
            });
        }
    }
}
