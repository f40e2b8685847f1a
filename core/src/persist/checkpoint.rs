//! Checkpoints: a weights file with the optimizer's state, the counters and the
//! generators added ([`save_checkpoint`], [`load_checkpoint`]).

use super::file::{read_file, write_atomic};
use super::generator::{rng_from_str, rng_to_string};
use super::tensors::{
    check_expected, is_num_batches_tracked, network_entries, network_tensors, param_entries, serialize,
    Entry, Stored, Tensor,
};
use super::{MEMORY, OPTIMIZER_PREFIX};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::SeededRng;
use crate::optim::OptimizerState;
use crate::params::{ParamPath, Params};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// The metadata value of `staticnet.version` this module writes and reads.
const CHECKPOINT_VERSION: &str = "1";
/// The most optimizer slots a checkpoint may hold (Adam has two).
const MAX_SLOTS: usize = 8;
/// The largest epoch or step count a checkpoint may hold (2^53, exact in f64):
/// counting on from a larger one could overflow.
const MAX_COUNT: u64 = 1 << 53;

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
                stored.decode_into(&e.name, &mut values);
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
    let tensor = |slot: &str, k: usize| {
        let param = params.get(k).map_or_else(|| k.to_string(), |p| p.name.clone());
        format!("`{OPTIMIZER_PREFIX}{slot}.{param}`")
    };
    if let Some(reason) = optimizer.problem(&tensor) {
        return Err(format_error(format!("checkpoint {reason}")));
    }
    if !params.is_empty() {
        check_slots_present(&optimizer, step).map_err(format_error)?;
    }
    let state = TrainingState { epoch, step, rng: trainer_rng, optimizer, settings };
    Ok(LoadedCheckpoint { state, restore: Restore { stored, rngs } })
}

/// Refuses optimizer state whose slots are missing where its kind and step say they
/// must exist (or present where they cannot): resuming would silently restart the
/// momentum or moments from zero. `step` is the run's step count (SGD counts none).
fn check_slots_present<T>(optimizer: &OptimizerState<T>, step: u64) -> std::result::Result<(), String> {
    let has = |slot: &str| optimizer.slots.iter().any(|(name, _)| name == slot);
    let (needed, slots): (bool, &[&str]) = match optimizer.kind.as_str() {
        "sgd" => {
            let momentum = optimizer.hyper.get("momentum").copied().unwrap_or(0.0);
            if momentum == 0.0 {
                (false, &["momentum_buffer"])
            } else if step > 0 {
                (true, &["momentum_buffer"])
            } else {
                return Ok(());
            }
        }
        "adam" | "adamw" => (optimizer.step > 0, &["exp_avg", "exp_avg_sq"]),
        _ => return Ok(()),
    };
    for slot in slots {
        if has(slot) != needed {
            let (what, why) = if needed { ("lacks", "needs it") } else { ("has", "cannot have one") };
            return Err(format!(
                "checkpoint {what} optimizer slot `{OPTIMIZER_PREFIX}{slot}`: {} optimizer state at step {} {why}",
                optimizer.kind,
                if optimizer.kind == "sgd" { step } else { optimizer.step },
            ));
        }
    }
    Ok(())
}
