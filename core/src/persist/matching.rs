//! Partial loading: [`load_matching`] and [`Matching`], for files that hold more,
//! less or differently named tensors than the network (a PyTorch model wrapped in
//! `DataParallel` or `torch.compile`, a backbone for a new head).

use super::file::read_file;
use super::tensors::{is_convertible, network_entries, Stored};
use super::MEMORY;
use crate::error::Result;
use crate::float::Float;
use crate::params::{ParamPath, Params};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// The prefixes PyTorch's wrappers add to every name: `nn.DataParallel` and
/// `DistributedDataParallel` (`module.`), `torch.compile` (`_orig_mod.`).
pub const PYTORCH_PREFIXES: [&str; 2] = ["module.", "_orig_mod."];

type Rename = Box<dyn Fn(&str) -> Option<String>>;

/// How [`Matching::load`] maps a file's tensor names to the network's.
///
/// Each stored name is first stripped of the [prefixes](Matching::strip_prefix)
/// (repeatedly, in any order: `module._orig_mod.fc.weight` becomes `fc.weight`),
/// then passed through the [renames](Matching::rename) in the order they were added.
///
/// ```
/// # fn main() -> staticnet_core::Result<()> {
/// use staticnet_core::init::{seeded_rng, Init};
/// use staticnet_core::layers::Dense;
/// use staticnet_core::persist::{self, Matching};
/// let layer = Dense::<f32, 4, 3>::new(true, Init::Auto, &mut seeded_rng(1));
/// let bytes = persist::to_bytes(&layer)?;
/// let mut net = Dense::<f32, 4, 3>::zeros(true);
/// let report = Matching::new().load_bytes(&mut net, &bytes)?;
/// assert!(report.is_complete());
/// // Renamed on the way in, and reported when nothing matches.
/// let report = Matching::new().rename_map([("bias", "offset")]).load_bytes(&mut net, &bytes)?;
/// assert_eq!((report.loaded.as_slice(), report.missing.as_slice()), (&["weight".to_string()][..], &["bias".to_string()][..]));
/// println!("{report}");
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct Matching {
    prefixes: Vec<String>,
    renames: Vec<Rename>,
}

impl Matching {
    /// No prefix stripped, no rename: names must match exactly.
    pub fn new() -> Self {
        Self::default()
    }

    /// Strips PyTorch's wrapper prefixes, [`PYTORCH_PREFIXES`].
    pub fn pytorch() -> Self {
        PYTORCH_PREFIXES.iter().fold(Self::new(), |m, p| m.strip_prefix(p))
    }

    /// Also strips `prefix` from the front of every stored name.
    pub fn strip_prefix(mut self, prefix: &str) -> Self {
        self.prefixes.push(prefix.to_string());
        self
    }

    /// Also renames: `f(name)` gives the network's name of a stored tensor (after the
    /// prefixes are stripped), or `None` to leave the name as it is.
    pub fn rename(mut self, f: impl Fn(&str) -> Option<String> + 'static) -> Self {
        self.renames.push(Box::new(f));
        self
    }

    /// Also renames by a table of whole names: `(stored name, network name)`.
    pub fn rename_map<'a>(self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let map: HashMap<String, String> = pairs.into_iter().map(|(a, b)| (a.into(), b.into())).collect();
        self.rename(move |name| map.get(name).cloned())
    }

    /// The network's name for the stored tensor `name`.
    pub fn network_name(&self, name: &str) -> String {
        let mut name = name;
        while let Some(rest) = self.prefixes.iter().find_map(|p| name.strip_prefix(p.as_str())) {
            name = rest;
        }
        let mut name = name.to_string();
        for rename in &self.renames {
            if let Some(renamed) = rename(&name) {
                name = renamed;
            }
        }
        name
    }

    /// Loads into `net` every tensor of the file at `path` whose (mapped) name the
    /// network has, with its shape and a float dtype (converted); leaves the other
    /// parameters as they are, and says what it did.
    ///
    /// Errors: [`crate::Error::Io`] and [`crate::Error::Format`] as
    /// [`super::load_into`]; names and shapes that do not fit are not errors but
    /// entries of the report. On an error `net` is unchanged.
    pub fn load<T: Float, N: Params<T>>(&self, net: &mut N, path: impl AsRef<Path>) -> Result<LoadReport> {
        let path = path.as_ref();
        self.load_bytes_at(net, &read_file(path)?, path)
    }

    /// [`Matching::load`] from bytes in memory.
    pub fn load_bytes<T: Float, N: Params<T>>(&self, net: &mut N, bytes: &[u8]) -> Result<LoadReport> {
        self.load_bytes_at(net, bytes, Path::new(MEMORY))
    }

    fn load_bytes_at<T: Float, N: Params<T>>(
        &self,
        net: &mut N,
        bytes: &[u8],
        path: &Path,
    ) -> Result<LoadReport> {
        let stored = Stored::parse(bytes, path)?;
        let expected: HashMap<String, Vec<usize>> =
            network_entries(net).into_iter().map(|e| (e.name, e.shape)).collect();
        // network name -> stored name, for the tensors that fit.
        let mut sources: HashMap<String, String> = HashMap::new();
        let mut skipped = Vec::new();
        for name in stored.names() {
            let target = self.network_name(name);
            let Some(info) = stored.info(name) else { continue };
            let reason = match expected.get(&target) {
                None => Some(SkipReason::NoSuchParameter { mapped: target.clone() }),
                Some(_) if !is_convertible(info.dtype) => Some(SkipReason::Dtype(info.dtype.to_string())),
                Some(shape) if *shape != info.shape => {
                    Some(SkipReason::Shape { expected: shape.clone(), found: info.shape.clone() })
                }
                Some(_) if sources.contains_key(&target) => {
                    Some(SkipReason::Duplicate { mapped: target.clone() })
                }
                Some(_) => None,
            };
            match reason {
                Some(reason) => skipped.push(Skipped { name: name.to_string(), reason }),
                None => {
                    sources.insert(target, name.to_string());
                }
            }
        }
        let mut report = LoadReport { loaded: Vec::new(), skipped, missing: Vec::new() };
        let mut apply = |name: ParamPath<'_>, value: &mut [T]| {
            let name = name.to_string();
            match sources.get(&name) {
                Some(source) => {
                    stored.decode_into(source, value);
                    report.loaded.push(name);
                }
                None => report.missing.push(name),
            }
        };
        net.visit_params_mut(&ParamPath::ROOT, &mut |p| apply(p.name, p.value));
        net.visit_buffers_mut(&ParamPath::ROOT, &mut |b| apply(b.name, b.value));
        Ok(report)
    }
}

impl fmt::Debug for Matching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matching")
            .field("prefixes", &self.prefixes)
            .field("renames", &self.renames.len())
            .finish()
    }
}

/// [`Matching::pytorch`]`().load(net, path)`: loads every tensor of the file
/// that fits the network, stripping `module.` and `_orig_mod.`, and reports.
pub fn load_matching<T: Float, N: Params<T>>(net: &mut N, path: impl AsRef<Path>) -> Result<LoadReport> {
    Matching::pytorch().load(net, path)
}

/// What a partial load did. `Display` prints it for a person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The network's parameters and buffers that were loaded, in visiting order.
    pub loaded: Vec<String>,
    /// The file's tensors that were not loaded, by their stored names, sorted.
    pub skipped: Vec<Skipped>,
    /// The network's parameters and buffers the file did not provide (left as
    /// they were), in visiting order.
    pub missing: Vec<String>,
}

impl LoadReport {
    /// Whether every parameter and buffer was loaded and nothing in the file was left over.
    pub fn is_complete(&self) -> bool {
        self.skipped.is_empty() && self.missing.is_empty()
    }
}

/// A stored tensor [`Matching::load`] did not load, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its name in the file.
    pub name: String,
    /// Why it was not loaded.
    pub reason: SkipReason,
}

/// Why a stored tensor was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The network has no parameter or buffer of that name (`mapped`: the name after
    /// prefixes and renames).
    NoSuchParameter {
        /// The name looked for.
        mapped: String,
    },
    /// The parameter has another shape.
    Shape {
        /// The network's shape.
        expected: Vec<usize>,
        /// The stored shape.
        found: Vec<usize>,
    },
    /// The stored dtype is not a float type (e.g. `I64`).
    Dtype(String),
    /// Another stored tensor already maps to the same parameter (the first by name is loaded).
    Duplicate {
        /// The parameter both map to.
        mapped: String,
    },
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match &self.reason {
            SkipReason::NoSuchParameter { mapped } if mapped == name => {
                write!(f, "`{name}`: no such parameter")
            }
            SkipReason::NoSuchParameter { mapped } => {
                write!(f, "`{name}` (as `{mapped}`): no such parameter")
            }
            SkipReason::Shape { expected, found } => {
                write!(f, "`{name}`: shape {found:?}, the network's is {expected:?}")
            }
            SkipReason::Dtype(dtype) => write!(f, "`{name}`: dtype {dtype} is not a float type"),
            SkipReason::Duplicate { mapped } => write!(f, "`{name}`: `{mapped}` was already loaded"),
        }
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, s, m) = (self.loaded.len(), self.skipped.len(), self.missing.len());
        write!(f, "loaded {l} tensors, skipped {s}, missing {m}")?;
        for skipped in &self.skipped {
            write!(f, "\n  skipped {skipped}")?;
        }
        for missing in &self.missing {
            write!(f, "\n  missing `{missing}` (left as it was)")?;
        }
        Ok(())
    }
}
