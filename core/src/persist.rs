//! Saving and loading networks, and training checkpoints, as [safetensors] files.
//!
//! # Weights: [`save`] and [`load_into`]
//!
//! A weights file holds every parameter and buffer of a network under its
//! PyTorch `state_dict` name, in the network's dtype (`F32` or `F64`,
//! [`Float::DTYPE`]), row-major, so the equivalent PyTorch module loads it with
//! `module.load_state_dict(safetensors.torch.load_file(path))` (strict), and JAX
//! or numpy read it with `safetensors.numpy.load_file`. The names and layouts:
//!
//! | layer | tensors |
//! |---|---|
//! | `dense` (`nn.Linear`) | `<name>.weight` `[out, in]`, `<name>.bias` `[out]` (unless `bias = false`) |
//! | `conv2d` (`nn.Conv2d`) | `<name>.weight` `[out, in, kh, kw]`, `<name>.bias` `[out]` (unless `bias = false`) |
//! | `batch_norm` (`nn.BatchNorm1d/2d`) | `<name>.weight`, `<name>.bias`, `<name>.running_mean`, `<name>.running_var` (all `[channels]`), and `<name>.num_batches_tracked` (`I64`, shape `[]`) |
//! | `layer_norm` (`nn.LayerNorm`) | `<name>.weight`, `<name>.bias`, both with the sample's shape (e.g. `[C, H, W]`) |
//! | activations, pools, `flatten`, `dropout` | nothing |
//!
//! `<name>` is the layer's name in `network!` (`fc1: dense(8)` gives `fc1.weight`);
//! an unnamed layer uses its index in the network counting every layer from 0,
//! as `nn.Sequential` does (`2.weight`). Networks chained with `a.then(b)` prefix
//! the names with `0.` and `1.`.
//!
//! `num_batches_tracked` is written as 0: staticnet does not count batches, and
//! PyTorch reads the count only when a batch norm has `momentum=None`
//! (a cumulative average), which staticnet does not offer. It is written so that
//! PyTorch's strict loading accepts the file, and ignored when loading.
//!
//! The header's metadata is `{"format": "pt"}`, as `safetensors.torch.save_file`
//! writes it. Tensors are stored in the safetensors crate's canonical order (by
//! dtype, then by name), so the same network always gives the same bytes.
//!
//! Loading checks every expected tensor's name, dtype and shape, and reports
//! every problem at once as [`Error::Mismatch`] ([`TensorProblem`]: missing,
//! unexpected, wrong dtype, wrong shape, each by name). A truncated, corrupted
//! or hostile file is an [`Error::Format`]; loading never panics, allocates no
//! more than the file's size, and on any error leaves the network unchanged.
//!
//! # Checkpoints: [`save_checkpoint`] and [`load_checkpoint`]
//!
//! A checkpoint is a weights file (the same tensors, so [`load_into`] and
//! PyTorch's non-strict loading read its weights) with the training state added:
//!
//! - tensors `optimizer.<slot>.<parameter name>`, shaped like the parameter, in
//!   the network's dtype: `optimizer.momentum_buffer.fc1.weight` for SGD with
//!   momentum, `optimizer.exp_avg.*` and `optimizer.exp_avg_sq.*` for Adam and
//!   AdamW (absent before the first step);
//! - metadata (all values are strings): `format` = `pt`, `staticnet.kind` =
//!   `checkpoint`, `staticnet.version` = `1`, `epoch` (epochs completed), `step`
//!   (optimizer steps taken), `trainer.rng` (the shuffling generator),
//!   `rng.<layer name>` (each dropout layer's generator), `optimizer` (`sgd`,
//!   `adam`, `adamw`), `optimizer.step` (Adam's step count),
//!   `optimizer.<hyper-parameter>` (`lr`, `momentum`, `nesterov`,
//!   `weight_decay`, `beta1`, `beta2`, `eps`; shortest round-trip decimal), and
//!   `trainer.<setting>` for the trainer's settings (`epochs`, `batch_size`,
//!   `seed`, `shuffle`, `schedule`, and `clip_grad_norm` / `clip_grad_value`
//!   when set; informational).
//!
//! A generator is written `chacha8:<seed as 64 hex digits>:<stream>:<word position>`,
//! the complete state of a [`SeededRng`].
//!
//! [`crate::train::Trainer::checkpoint`] and [`crate::train::Trainer::resume`]
//! use these functions; resumed training ends with exactly the weights of an
//! uninterrupted run.
//!
//! # Atomic writes
//!
//! [`save`] and [`save_checkpoint`] write a temporary file next to the target
//! (`.<file name>.<random>.tmp`), flush and `fsync` it, rename it over the target,
//! then `fsync` the directory (on Unix). A process killed while saving leaves the
//! previous file intact (and possibly a stray temporary file, which is safe to delete).
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use crate::error::{Error, Result, TensorProblem};
use crate::float::Float;
use crate::init::SeededRng;
use crate::optim::OptimizerState;
use crate::params::{ParamPath, Params};
use rand::SeedableRng;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;

/// The path reported in errors about in-memory bytes.
const MEMORY: &str = "<memory>";
/// The metadata value of `staticnet.version` this module writes and reads.
const CHECKPOINT_VERSION: &str = "1";
/// Where a checkpoint's optimizer tensors live: `optimizer.<slot>.<parameter>`.
const OPTIMIZER_PREFIX: &str = "optimizer.";
/// The most optimizer slots a checkpoint may hold (Adam has two).
const MAX_SLOTS: usize = 8;
/// The largest epoch or step count a checkpoint may hold (2^53, exact in f64):
/// counting on from a larger one could overflow.
const MAX_COUNT: u64 = 1 << 53;

// ---------------------------------------------------------------------------
// Weights

/// Saves every parameter and buffer of `net` to a safetensors file at `path`,
/// atomically (see the [module documentation](self) for names, layout and the
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

// ---------------------------------------------------------------------------
// Checkpoints

/// The training progress stored beside a network in a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingState<T> {
    /// Epochs completed; training resumes with epoch `epoch + 1` (1-based).
    pub epoch: usize,
    /// Optimizer steps (mini-batches) taken so far.
    pub step: u64,
    /// The trainer's shuffling generator after `epoch` epochs.
    pub rng: SeededRng,
    /// The optimizer's settings and per-parameter state.
    pub optimizer: OptimizerState<T>,
    /// The trainer's settings when saved (`epochs`, `batch_size`, `seed`,
    /// `shuffle`, `schedule`), stored as `trainer.<key>` metadata. Informational:
    /// resuming reads the state above, not these.
    pub settings: BTreeMap<String, String>,
}

/// Saves `net` with the training state `state` as a checkpoint at `path`,
/// atomically. `net` is borrowed mutably only to read its dropout generators
/// ([`Params::visit_rngs`] visits mutably); nothing in it changes.
///
/// Errors: [`Error::Io`] if the file cannot be written, [`Error::InvalidConfig`]
/// if the optimizer state does not fit the network's parameters.
pub fn save_checkpoint<T: Float, N: Params<T>>(
    net: &mut N,
    state: &TrainingState<T>,
    path: impl AsRef<Path>,
) -> Result<()> {
    write_atomic(path, &checkpoint_to_bytes(net, state)?)
}

/// The bytes [`save_checkpoint`] writes.
pub fn checkpoint_to_bytes<T: Float, N: Params<T>>(net: &mut N, state: &TrainingState<T>) -> Result<Vec<u8>> {
    let mut tensors = network_tensors(&*net)?;
    let params = param_entries(&*net);
    if state.optimizer.slots.len() > MAX_SLOTS {
        return Err(Error::InvalidConfig(format!("a checkpoint holds at most {MAX_SLOTS} optimizer slots")));
    }
    for (slot, vectors) in &state.optimizer.slots {
        if vectors.is_empty() {
            continue;
        }
        if slot.is_empty() || slot.contains('.') {
            return Err(Error::InvalidConfig(format!("optimizer slot name `{slot}` is empty or has a dot")));
        }
        if vectors.len() != params.len() {
            return Err(Error::InvalidConfig(format!(
                "optimizer slot `{slot}` holds {} vectors but the network has {} parameters",
                vectors.len(),
                params.len()
            )));
        }
        for (entry, values) in params.iter().zip(vectors) {
            if values.len() != entry.len() {
                return Err(Error::InvalidConfig(format!(
                    "optimizer slot `{slot}` of `{}` holds {} values, the parameter {}",
                    entry.name,
                    values.len(),
                    entry.len()
                )));
            }
            let name = format!("{OPTIMIZER_PREFIX}{slot}.{}", entry.name);
            tensors.push((name, Tensor::floats(entry.shape.clone(), values)));
        }
    }
    let mut meta = BTreeMap::new();
    let mut put = |k: &str, v: String| meta.insert(k.to_string(), v);
    put("format", "pt".into());
    put("staticnet.kind", "checkpoint".into());
    put("staticnet.version", CHECKPOINT_VERSION.into());
    put("epoch", state.epoch.to_string());
    put("step", state.step.to_string());
    put("trainer.rng", rng_to_string(&state.rng));
    put("optimizer", state.optimizer.kind.clone());
    put("optimizer.step", state.optimizer.step.to_string());
    for (key, value) in state.optimizer.hyper.iter().filter(|(k, _)| *k != "step") {
        // `{:?}` is the shortest decimal that parses back to the same f64.
        put(&format!("optimizer.{key}"), format!("{value:?}"));
    }
    for (key, value) in &state.settings {
        if key != "rng" {
            put(&format!("trainer.{key}"), value.clone());
        }
    }
    net.visit_rngs(&ParamPath::ROOT, &mut |name, rng| {
        meta.insert(format!("rng.{name}"), rng_to_string(rng));
    });
    serialize(tensors, meta)
}

/// Restores `net` (parameters, buffers, dropout generators) from the checkpoint
/// at `path` and returns the training state stored with it. On any error `net`
/// is unchanged. To resume a [`crate::train::Trainer`], use its `resume`, which
/// also restores the optimizer and the epoch.
pub fn load_checkpoint<T: Float, N: Params<T>>(
    net: &mut N,
    path: impl AsRef<Path>,
) -> Result<TrainingState<T>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let loaded = read_checkpoint(net, &bytes, path)?;
    loaded.restore.apply(net);
    Ok(loaded.state)
}

/// [`load_checkpoint`] from bytes in memory (errors name the path `<memory>`).
pub fn load_checkpoint_from_bytes<T: Float, N: Params<T>>(
    net: &mut N,
    bytes: &[u8],
) -> Result<TrainingState<T>> {
    let loaded = read_checkpoint(net, bytes, Path::new(MEMORY))?;
    loaded.restore.apply(net);
    Ok(loaded.state)
}

/// A checkpoint checked against a network but not yet applied to it.
pub(crate) struct LoadedCheckpoint<'a, T> {
    /// The training state, optimizer included.
    pub(crate) state: TrainingState<T>,
    /// What [`Restore::apply`] writes into the network.
    pub(crate) restore: Restore<'a>,
}

/// The network part of a checked checkpoint: tensors and dropout generators.
pub(crate) struct Restore<'a> {
    stored: Stored<'a>,
    rngs: HashMap<String, SeededRng>,
}

impl Restore<'_> {
    /// Writes the checked values into `net`, which must be the network they were checked against.
    pub(crate) fn apply<T: Float, N: Params<T>>(self, net: &mut N) {
        self.stored.apply(net);
        let rngs = self.rngs;
        net.visit_rngs(&ParamPath::ROOT, &mut |name, rng| {
            if let Some(saved) = rngs.get(&name.to_string()) {
                *rng = saved.clone();
            }
        });
    }
}

/// Parses and checks a checkpoint against `net` without changing anything
/// (`net` is borrowed mutably only to visit its generators).
pub(crate) fn read_checkpoint<'a, T: Float, N: Params<T>>(
    net: &mut N,
    bytes: &'a [u8],
    path: &Path,
) -> Result<LoadedCheckpoint<'a, T>> {
    let stored = Stored::parse(bytes, path)?;
    let format_error = |reason: String| Error::format(path, reason);
    match stored.meta("staticnet.kind") {
        Some("checkpoint") => {}
        _ => {
            let reason = "not a staticnet checkpoint (no `staticnet.kind` = `checkpoint` metadata); \
                          load weights files with load_into";
            return Err(format_error(reason.into()));
        }
    }
    match stored.meta("staticnet.version") {
        Some(CHECKPOINT_VERSION) => {}
        other => {
            return Err(format_error(format!(
                "unsupported checkpoint version {other:?}: this staticnet reads version {CHECKPOINT_VERSION}"
            )))
        }
    }

    // Tensors: the network's, then every optimizer slot present must cover every parameter.
    let expected = network_entries(&*net);
    let params = param_entries(&*net);
    let mut problems = Vec::new();
    check_expected::<T>(&stored, &expected, &mut problems);
    let known: HashSet<&str> = expected.iter().map(|e| e.name.as_str()).collect();
    let mut slots: Vec<&str> = Vec::new();
    let mut claimed: HashSet<String> = HashSet::new();
    for name in stored.names() {
        if known.contains(name) || is_num_batches_tracked(name, &known) {
            continue;
        }
        if let Some((slot, _)) = name.strip_prefix(OPTIMIZER_PREFIX).and_then(|rest| rest.split_once('.')) {
            if !slot.is_empty() && !slots.contains(&slot) {
                slots.push(slot);
            }
        }
    }
    slots.sort_unstable();
    if slots.len() > MAX_SLOTS {
        // Every slot is checked against every parameter: bound the work a hostile file can ask for.
        return Err(format_error(format!(
            "{} optimizer slots ({}…): no optimizer has more than {MAX_SLOTS}",
            slots.len(),
            slots[..MAX_SLOTS].join(", ")
        )));
    }
    let mut slot_entries = Vec::new();
    for slot in &slots {
        let entries: Vec<Entry> = params
            .iter()
            .map(|p| Entry { name: format!("{OPTIMIZER_PREFIX}{slot}.{}", p.name), shape: p.shape.clone() })
            .collect();
        check_expected::<T>(&stored, &entries, &mut problems);
        claimed.extend(entries.iter().map(|e| e.name.clone()));
        slot_entries.push(entries);
    }
    for name in stored.names() {
        if !known.contains(name) && !is_num_batches_tracked(name, &known) && !claimed.contains(name) {
            problems.push(stored.unexpected(name));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Mismatch { path: path.to_path_buf(), problems });
    }

    // Metadata: counters, generators and the optimizer's settings.
    let number = |key: &str| -> Result<u64> {
        let value =
            stored.meta(key).ok_or_else(|| format_error(format!("checkpoint metadata has no `{key}`")))?;
        let count: u64 = value
            .parse()
            .map_err(|_| format_error(format!("checkpoint metadata `{key}` = {value:?} is not a count")))?;
        // No run takes 2^53 steps; larger counts would overflow as training goes on.
        if count > MAX_COUNT {
            return Err(format_error(format!(
                "checkpoint metadata `{key}` = {value:?} is out of range: counts are at most 2^53"
            )));
        }
        Ok(count)
    };
    let epoch =
        usize::try_from(number("epoch")?).map_err(|_| format_error("`epoch` is out of range".into()))?;
    let step = number("step")?;
    let rng_at = |key: &str| -> Result<SeededRng> {
        let value =
            stored.meta(key).ok_or_else(|| format_error(format!("checkpoint metadata has no `{key}`")))?;
        rng_from_str(value).ok_or_else(|| {
            format_error(format!("checkpoint metadata `{key}` = {value:?} is not a generator state"))
        })
    };
    let trainer_rng = rng_at("trainer.rng")?;
    let mut names = Vec::new();
    net.visit_rngs(&ParamPath::ROOT, &mut |name, _| names.push(name.to_string()));
    let mut rngs = HashMap::new();
    for name in names {
        let rng = rng_at(&format!("rng.{name}")).map_err(|_| {
            format_error(format!(
                "checkpoint has no valid generator state for dropout layer `{name}` (`rng.{name}`)"
            ))
        })?;
        rngs.insert(name, rng);
    }
    let mut extra: Vec<&str> = stored
        .metadata()
        .filter_map(|(k, _)| k.strip_prefix("rng."))
        .filter(|name| !rngs.contains_key(*name))
        .collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        return Err(format_error(format!(
            "checkpoint has generator states for dropout layers the network does not have: {}",
            extra.join(", ")
        )));
    }
    let kind = stored
        .meta("optimizer")
        .ok_or_else(|| format_error("checkpoint metadata has no `optimizer`".into()))?;
    let mut hyper = BTreeMap::new();
    let mut settings = BTreeMap::new();
    for (key, value) in stored.metadata() {
        if let Some(name) = key.strip_prefix("optimizer.") {
            if name != "step" {
                let v: f64 = value.parse().map_err(|_| {
                    format_error(format!("checkpoint metadata `{key}` = {value:?} is not a number"))
                })?;
                hyper.insert(name.to_string(), v);
            }
        } else if let Some(name) = key.strip_prefix("trainer.") {
            if name != "rng" {
                settings.insert(name.to_string(), value.to_string());
            }
        }
    }
    let mut optimizer_slots = Vec::with_capacity(slots.len());
    for (slot, entries) in slots.iter().zip(&slot_entries) {
        let vectors = entries
            .iter()
            .map(|e| {
                let mut values = vec![T::zero(); e.len()];
                if let Some(bytes) = stored.tensor_bytes(&e.name) {
                    decode(bytes, &mut values);
                }
                values
            })
            .collect();
        optimizer_slots.push((slot.to_string(), vectors));
    }
    let optimizer = OptimizerState {
        kind: kind.to_string(),
        hyper,
        step: number("optimizer.step")?,
        slots: optimizer_slots,
    };
    let state = TrainingState { epoch, step, rng: trainer_rng, optimizer, settings };
    Ok(LoadedCheckpoint { state, restore: Restore { stored, rngs } })
}

// ---------------------------------------------------------------------------
// Files

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// flushed and `fsync`ed, renamed over `path`, then the directory `fsync`ed
/// (on Unix). Readers see the old file or the new one, never a partial one;
/// a killed process leaves at most a stray `.<file name>.<random>.tmp` behind.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let io = |e: std::io::Error| Error::io(path, e);
    let Some(file_name) = path.file_name() else {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path does not name a file",
        )));
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut prefix = OsString::from(".");
    prefix.push(file_name);
    prefix.push(".");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        // The usual mode of a new file (0666 less the umask), not tempfile's private 0600.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir).map_err(io)?;
    temp.write_all(bytes).map_err(io)?;
    temp.flush().map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    // On error the temporary file is deleted when the error drops it.
    temp.persist(path).map_err(|e| io(e.error))?;
    #[cfg(unix)]
    {
        // Makes the rename itself durable. Some file systems refuse to sync a
        // directory; the file is complete and renamed either way.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Reads a whole regular file, allocating no more than its size.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::io(path, e);
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::other("is a directory, not a safetensors file")));
    }
    if !meta.is_file() {
        return Err(Error::format(path, "not a regular file"));
    }
    let len = meta.len();
    let too_large =
        || Error::format(path, format!("the file is too large to load into memory ({len} bytes)"));
    let capacity = usize::try_from(len).map_err(|_| too_large())?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(capacity).map_err(|_| too_large())?;
    // One byte more than announced, to notice a file that grew while being read.
    file.take(len.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 != len {
        return Err(Error::format(path, "the file changed size while being read"));
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// Tensors

/// A parameter or buffer of a network: its name and PyTorch shape.
struct Entry {
    name: String,
    shape: Vec<usize>,
}

impl Entry {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Every parameter, then every buffer, in visiting order.
fn network_entries<T: Float, N: Params<T>>(net: &N) -> Vec<Entry> {
    let mut entries = param_entries(net);
    net.visit_buffers(&ParamPath::ROOT, &mut |b| {
        entries.push(Entry { name: b.name.to_string(), shape: b.shape.to_vec() })
    });
    entries
}

/// Every trainable parameter, in visiting order (the optimizer's indexing).
fn param_entries<T: Float, N: Params<T>>(net: &N) -> Vec<Entry> {
    let mut entries = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| {
        entries.push(Entry { name: p.name.to_string(), shape: p.shape.to_vec() })
    });
    entries
}

/// Whether `name` is `<prefix>num_batches_tracked` of a batch norm whose
/// `<prefix>running_mean` the network has.
fn is_num_batches_tracked(name: &str, known: &HashSet<&str>) -> bool {
    name.strip_suffix("num_batches_tracked").is_some_and(|prefix| {
        (prefix.is_empty() || prefix.ends_with('.'))
            && known.contains(format!("{prefix}running_mean").as_str())
    })
}

/// An owned tensor to serialize.
struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Tensor {
    fn floats<T: Float>(shape: Vec<usize>, values: &[T]) -> Self {
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
fn network_tensors<T: Float, N: Params<T>>(net: &N) -> Result<Vec<(String, Tensor)>> {
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
fn serialize(tensors: Vec<(String, Tensor)>, metadata: BTreeMap<String, String>) -> Result<Vec<u8>> {
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
fn decode<T: Float>(bytes: &[u8], out: &mut [T]) {
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
struct Stored<'a> {
    metadata: Metadata,
    /// The tensor names, sorted.
    names: Vec<String>,
    data: &'a [u8],
}

impl<'a> Stored<'a> {
    /// Parses and validates `bytes`: the header length fits the file, the header
    /// is JSON naming dtypes, shapes and offsets that tile the data section exactly.
    fn parse(bytes: &'a [u8], path: &Path) -> Result<Self> {
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
    fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.metadata().as_ref()?.get(key).map(String::as_str)
    }

    /// Every metadata entry (in no particular order).
    fn metadata(&self) -> impl Iterator<Item = (&str, &str)> {
        self.metadata.metadata().iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The tensor names in the file, sorted.
    fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.metadata.info(name)
    }

    fn tensor_bytes(&self, name: &str) -> Option<&'a [u8]> {
        let (start, end) = self.info(name)?.data_offsets;
        self.data.get(start..end)
    }

    fn unexpected(&self, name: &str) -> TensorProblem {
        let (dtype, shape) = match self.info(name) {
            Some(info) => (info.dtype.to_string(), info.shape.clone()),
            None => (String::from("?"), Vec::new()),
        };
        TensorProblem::Unexpected { name: name.to_string(), dtype, shape }
    }

    /// Copies every parameter and buffer of `net` from the file; [`check_expected`] found no problem.
    fn apply<T: Float, N: Params<T>>(&self, net: &mut N) {
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
fn check_expected<T: Float>(stored: &Stored<'_>, expected: &[Entry], problems: &mut Vec<TensorProblem>) {
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

// ---------------------------------------------------------------------------
// Generators

/// `chacha8:<seed hex>:<stream>:<word position>`.
fn rng_to_string(rng: &SeededRng) -> String {
    let seed: String = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
    format!("chacha8:{seed}:{}:{}", rng.get_stream(), rng.get_word_pos())
}

/// The inverse of [`rng_to_string`]; `None` if `s` is not one.
fn rng_from_str(s: &str) -> Option<SeededRng> {
    let mut parts = s.split(':');
    let (kind, seed_hex, stream, word_pos) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if kind != "chacha8" || parts.next().is_some() || seed_hex.len() != 64 || !seed_hex.is_ascii() {
        return None;
    }
    let mut seed = [0u8; 32];
    for (byte, pair) in seed.iter_mut().zip(seed_hex.as_bytes().chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    let mut rng = SeededRng::from_seed(seed);
    rng.set_stream(stream.parse().ok()?);
    rng.set_word_pos(word_pos.parse().ok()?);
    Some(rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{seeded_rng, Init};
    use crate::layers::{BatchNorm, BatchNormGrad, Dense, DenseGrad, Dropout};
    use crate::optim::{Adam, Optimizer};
    use crate::params::{Param, ParamMut};
    use rand::Rng;

    /// `fc: dense(3 -> 2), bn: batch_norm, drop: dropout(0.5)`, by hand.
    struct Tiny<T: Float> {
        fc: Dense<T, 3, 2>,
        bn: BatchNorm<T, 2, 2>,
        drop: Dropout,
    }

    impl<T: Float> Tiny<T> {
        fn new(seed: u64) -> Self {
            let mut rng = seeded_rng(seed);
            let mut net = Tiny {
                fc: Dense::new(true, Init::Glorot, &mut rng),
                bn: BatchNorm::default(),
                drop: Dropout::new(0.5, seed).unwrap(),
            };
            // Distinct, non-default values everywhere.
            let mut k = 0.0;
            net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
                p.value.iter_mut().for_each(|v| {
                    k += 1.0;
                    *v += T::cast(k / 7.0);
                })
            });
            net.visit_buffers_mut(&ParamPath::ROOT, &mut |b| {
                b.value.iter_mut().for_each(|v| {
                    k += 1.0;
                    *v = T::cast(k / 3.0);
                })
            });
            net
        }

        fn zeros() -> Self {
            Tiny { fc: Dense::zeros(true), bn: BatchNorm::default(), drop: Dropout::new(0.5, 0).unwrap() }
        }

        /// Every parameter and buffer value, in order.
        fn values(&self) -> Vec<f64> {
            let mut out = Vec::new();
            self.visit_params(&ParamPath::ROOT, &mut |p| out.extend(p.value.iter().map(|v| v.as_f64())));
            self.visit_buffers(&ParamPath::ROOT, &mut |b| out.extend(b.value.iter().map(|v| v.as_f64())));
            out
        }
    }

    impl<T: Float> Params<T> for Tiny<T> {
        type Gradients = (DenseGrad<T, 3, 2>, BatchNormGrad<T, 2>);
        const PARAM_COUNT: usize = 8 + 4;

        fn zero_gradients(&self) -> Self::Gradients {
            (self.fc.zero_gradients(), self.bn.zero_gradients())
        }
        fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
            self.fc.visit_params(&path.join("fc"), f);
            self.bn.visit_params(&path.join("bn"), f);
        }
        fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
            self.fc.visit_params_mut(&path.join("fc"), f);
            self.bn.visit_params_mut(&path.join("bn"), f);
        }
        fn visit_params_with_grads(
            &mut self,
            grads: &Self::Gradients,
            path: &ParamPath<'_>,
            f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
        ) {
            self.fc.visit_params_with_grads(&grads.0, &path.join("fc"), f);
            self.bn.visit_params_with_grads(&grads.1, &path.join("bn"), f);
        }
        fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
            Dense::<T, 3, 2>::visit_grads(&grads.0, f);
            BatchNorm::<T, 2, 2>::visit_grads(&grads.1, f);
        }
        fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
            self.bn.visit_buffers(&path.join("bn"), f);
        }
        fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
            self.bn.visit_buffers_mut(&path.join("bn"), f);
        }
        fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
            Params::<T>::visit_rngs(&mut self.drop, &path.join("drop"), f);
        }
    }

    /// A safetensors file with the given `(name, dtype, shape)` tensors (zero data).
    fn file(tensors: &[(&str, Dtype, &[usize])]) -> Vec<u8> {
        let tensors: Vec<(String, Tensor)> = tensors
            .iter()
            .map(|&(name, dtype, shape)| {
                let len = shape.iter().product::<usize>() * dtype.bitsize() / 8;
                (name.to_string(), Tensor { dtype, shape: shape.to_vec(), data: vec![0; len] })
            })
            .collect();
        serialize(tensors, BTreeMap::new()).unwrap()
    }

    fn problems(result: Result<()>) -> Vec<TensorProblem> {
        match result {
            Err(Error::Mismatch { problems, .. }) => problems,
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn round_trip_is_bit_exact_in_f32_and_f64() {
        fn check<T: Float>() {
            let net = Tiny::<T>::new(3);
            let bytes = to_bytes(&net).unwrap();
            assert_eq!(bytes, to_bytes(&net).unwrap(), "deterministic bytes");
            let mut loaded = Tiny::<T>::zeros();
            load_from_bytes(&mut loaded, &bytes).unwrap();
            let (a, b) = (net.values(), loaded.values());
            assert_eq!(
                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
        check::<f32>();
        check::<f64>();
    }

    #[test]
    fn files_hold_pytorch_names_dtypes_and_num_batches_tracked() {
        let bytes = to_bytes(&Tiny::<f32>::new(1)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "bn.bias",
                "bn.num_batches_tracked",
                "bn.running_mean",
                "bn.running_var",
                "bn.weight",
                "fc.bias",
                "fc.weight"
            ]
        );
        let fc = st.tensor("fc.weight").unwrap();
        assert_eq!((fc.dtype(), fc.shape()), (Dtype::F32, &[2, 3][..]));
        let count = st.tensor("bn.num_batches_tracked").unwrap();
        assert_eq!((count.dtype(), count.shape(), count.data()), (Dtype::I64, &[][..], &[0u8; 8][..]));
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap().get("format").map(String::as_str), Some("pt"));
        let f64_bytes = to_bytes(&Tiny::<f64>::new(1)).unwrap();
        assert_eq!(
            SafeTensors::deserialize(&f64_bytes).unwrap().tensor("bn.weight").unwrap().dtype(),
            Dtype::F64
        );
    }

    #[test]
    fn every_mismatch_is_reported_by_name_and_nothing_is_loaded() {
        let bytes = file(&[
            ("fc.weight", Dtype::F32, &[3, 2]), // transposed
            ("fc.bias", Dtype::F64, &[2]),      // wrong dtype
            ("bn.weight", Dtype::F64, &[3]),    // wrong dtype and shape
            ("bn.running_mean", Dtype::F32, &[2]),
            ("bn.running_var", Dtype::F32, &[2]),
            ("bn.num_batches_tracked", Dtype::I64, &[]),
            ("extra", Dtype::F32, &[1]),
            ("fc.num_batches_tracked", Dtype::I64, &[]), // not a batch norm: unexpected
        ]);
        let mut net = Tiny::<f32>::new(2);
        let before = net.values();
        let found = problems(load_from_bytes(&mut net, &bytes));
        assert_eq!(net.values(), before);
        let s = |x: &str| x.to_string();
        assert_eq!(
            found,
            vec![
                TensorProblem::WrongShape { name: s("fc.weight"), expected: vec![2, 3], found: vec![3, 2] },
                TensorProblem::WrongDtype { name: s("fc.bias"), expected: s("F32"), found: s("F64") },
                TensorProblem::WrongDtype { name: s("bn.weight"), expected: s("F32"), found: s("F64") },
                TensorProblem::WrongShape { name: s("bn.weight"), expected: vec![2], found: vec![3] },
                TensorProblem::Missing { name: s("bn.bias"), dtype: s("F32"), shape: vec![2] },
                TensorProblem::Unexpected { name: s("extra"), dtype: s("F32"), shape: vec![1] },
                TensorProblem::Unexpected {
                    name: s("fc.num_batches_tracked"),
                    dtype: s("I64"),
                    shape: vec![]
                },
            ]
        );
        let message = load_from_bytes(&mut net, &bytes).unwrap_err().to_string();
        assert_eq!(
            message,
            "<memory>: the stored tensors do not fit the network (7 problems):\n  \
             - `fc.weight` has shape [3, 2], expected [2, 3]\n  \
             - `fc.bias` has dtype F64, expected F32\n  \
             - `bn.weight` has dtype F64, expected F32\n  \
             - `bn.weight` has shape [3], expected [2]\n  \
             - missing tensor `bn.bias`: expected F32 [2]\n  \
             - unexpected tensor `extra` (F32 [1]): the network has no such parameter\n  \
             - unexpected tensor `fc.num_batches_tracked` (I64 []): the network has no such parameter"
        );
    }

    #[test]
    fn num_batches_tracked_is_optional_and_ignored() {
        let net = Tiny::<f64>::new(4);
        let bytes = to_bytes(&net).unwrap();
        let full = SafeTensors::deserialize(&bytes).unwrap().tensors();
        let without: Vec<(String, Tensor)> = full
            .into_iter()
            .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
            .map(|(n, v)| {
                (n, Tensor { dtype: v.dtype(), shape: v.shape().to_vec(), data: v.data().to_vec() })
            })
            .collect();
        let mut loaded = Tiny::<f64>::zeros();
        load_from_bytes(&mut loaded, &serialize(without, BTreeMap::new()).unwrap()).unwrap();
        assert_eq!(loaded.values(), net.values());
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_or_harmless_never_a_panic() {
        let net = Tiny::<f32>::new(5);
        let bytes = to_bytes(&net).unwrap();
        let mut target = Tiny::<f32>::zeros();
        let before = target.values();
        for len in 0..bytes.len() {
            let err = load_from_bytes(&mut target, &bytes[..len]).unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "{len}: {err}");
            assert_eq!(target.values(), before);
        }
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                let mut t = Tiny::<f32>::zeros();
                if load_from_bytes(&mut t, &bad).is_err() {
                    assert_eq!(t.values(), before, "byte {i}");
                }
            }
        }
    }

    #[test]
    fn hostile_headers_are_refused_before_allocating() {
        let mut net = Tiny::<f32>::zeros();
        let mut huge_len = u64::MAX.to_le_bytes().to_vec();
        huge_len.extend_from_slice(b"{}");
        let err = load_from_bytes(&mut net, &huge_len).unwrap_err().to_string();
        assert!(err.contains("header length is 18446744073709551615 bytes but only 2 bytes follow"), "{err}");
        // A tensor claiming 2^62 elements, with offsets that do not match.
        let header = br#"{"fc.weight":{"dtype":"F32","shape":[4611686018427387904,2],"data_offsets":[0,8]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0; 8]);
        let err = load_from_bytes(&mut net, &bytes).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
        // Offsets beyond the data.
        let header = br#"{"fc.weight":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        assert!(matches!(load_from_bytes(&mut net, &bytes), Err(Error::Format { .. })));
        assert!(load_from_bytes(&mut net, b"garbage garbage garbage").is_err());
        assert!(load_from_bytes(&mut net, &[]).unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn generators_round_trip_through_their_text_form() {
        let mut rng = seeded_rng(9);
        for draws in [0, 1, 7, 16, 63, 1000] {
            for _ in 0..draws {
                rng.next_u32();
            }
            let mut back = rng_from_str(&rng_to_string(&rng)).unwrap();
            assert!(back == rng);
            assert_eq!(back.next_u64(), rng.clone().next_u64());
        }
        rng.set_stream(5);
        assert!(rng_from_str(&rng_to_string(&rng)).unwrap() == rng);
        for bad in
            ["", "chacha8", "chacha20:00:0:0", "chacha8:zz:0:0", &format!("chacha8:{}:x:0", "0".repeat(64))]
        {
            assert!(rng_from_str(bad).is_none(), "{bad}");
        }
    }

    fn trained_state(net: &mut Tiny<f64>) -> TrainingState<f64> {
        let mut opt = Adam::new(0.01);
        let grads = (net.fc.zero_gradients(), net.bn.zero_gradients());
        let mut grads = grads;
        grads.0.weight.fill(0.5);
        grads.1.bias.fill(-0.25);
        opt.step(net, &grads).unwrap();
        net.drop.rng_mut().next_u32();
        let mut rng = seeded_rng(1);
        rng.next_u64();
        TrainingState {
            epoch: 3,
            step: 42,
            rng,
            optimizer: opt.state().unwrap(),
            settings: BTreeMap::from([("batch_size".to_string(), "16".to_string())]),
        }
    }

    #[test]
    fn checkpoints_restore_the_network_its_generators_and_the_state() {
        let mut net = Tiny::<f64>::new(6);
        let state = trained_state(&mut net);
        let bytes = checkpoint_to_bytes(&mut net, &state).unwrap();
        let mut back = Tiny::<f64>::zeros();
        let loaded = load_checkpoint_from_bytes(&mut back, &bytes).unwrap();
        assert_eq!(loaded, state);
        assert_eq!(back.values(), net.values());
        assert!(back.drop.rng() == net.drop.rng());
        // The weights part reads as a plain weights file too.
        let mut weights = Tiny::<f64>::zeros();
        load_from_bytes(&mut weights, &bytes).unwrap();
        assert_eq!(weights.values(), net.values());
        // A weights file is not a checkpoint.
        let err = load_checkpoint_from_bytes(&mut back, &to_bytes(&net).unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a staticnet checkpoint"), "{err}");
    }

    #[test]
    fn a_checkpoint_that_does_not_fit_changes_nothing() {
        let mut net = Tiny::<f64>::new(7);
        let state = trained_state(&mut net);
        let bytes = checkpoint_to_bytes(&mut net, &state).unwrap();
        // Drop one optimizer tensor.
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let tensors: Vec<(String, Tensor)> = st
            .tensors()
            .into_iter()
            .filter(|(n, _)| n != "optimizer.exp_avg.fc.bias")
            .map(|(n, v)| {
                (n, Tensor { dtype: v.dtype(), shape: v.shape().to_vec(), data: v.data().to_vec() })
            })
            .collect();
        let metadata = meta.metadata().clone().unwrap().into_iter().collect();
        let broken = serialize(tensors, metadata).unwrap();
        let mut target = Tiny::<f64>::zeros();
        let rng_before = target.drop.rng().clone();
        let found = match load_checkpoint_from_bytes(&mut target, &broken) {
            Err(Error::Mismatch { problems, .. }) => problems,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            found,
            vec![TensorProblem::Missing {
                name: "optimizer.exp_avg.fc.bias".into(),
                dtype: "F64".into(),
                shape: vec![2]
            }]
        );
        assert_eq!(target.values(), Tiny::<f64>::zeros().values());
        assert!(*target.drop.rng() == rng_before);
        // Truncations are format errors.
        for len in (0..bytes.len()).step_by(13) {
            assert!(load_checkpoint_from_bytes(&mut target, &bytes[..len]).is_err());
        }
        assert_eq!(target.values(), Tiny::<f64>::zeros().values());
    }

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        save(&Tiny::<f32>::new(1), &path).unwrap();
        save(&Tiny::<f32>::new(2), &path).unwrap();
        let mut net = Tiny::<f32>::zeros();
        load_into(&mut net, &path).unwrap();
        assert_eq!(net.values(), Tiny::<f32>::new(2).values());
        let entries: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries, ["w.safetensors"]);
        // A directory is neither written over nor read.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(matches!(save(&net, &sub), Err(Error::Io { .. })));
        assert!(matches!(load_into(&mut net, &sub), Err(Error::Io { .. })));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left");
        assert!(matches!(load_into(&mut net, dir.path().join("missing")), Err(Error::Io { .. })));
    }
}
