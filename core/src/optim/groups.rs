//! Parameter groups: settings that differ from the optimizer's for some parameters, chosen by
//! name or shape (e.g. no weight decay on biases and norms), as PyTorch's `param_groups`.

use crate::float::Float;
use crate::params::{ParamPath, Params};
use std::fmt;
use std::sync::Arc;

/// Which parameters a [`ParamGroup`] holds.
#[derive(Clone)]
enum Select {
    /// Names equal to the prefix or under it (`backbone` holds `backbone.fc1.weight`).
    Prefix(String),
    /// Parameters of rank 0 or 1: biases and the scales and shifts of norms.
    Vectors,
    /// Names the user's function accepts.
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

/// Settings for the parameters a rule selects, overriding the optimizer's: a scale of its
/// learning rate (schedules still apply, to every group alike) and a weight decay. Added to
/// any optimizer with its `group` method; a parameter takes the first group that selects it,
/// and the optimizer's own settings if none does.
///
/// ```
/// use staticnet::optim::{AdamW, ParamGroup};
/// // Decoupled weight decay on the weight matrices only, and a slower backbone.
/// let opt = AdamW::<f32>::new(1e-3, 0.01)
///     .group(ParamGroup::vectors().weight_decay(0.0))
///     .group(ParamGroup::prefix("backbone").lr_scale(0.1));
/// # let _ = opt;
/// ```
#[derive(Clone)]
pub struct ParamGroup {
    select: Select,
    lr_scale: f64,
    weight_decay: Option<f64>,
}

impl fmt::Debug for ParamGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let select = match &self.select {
            Select::Prefix(p) => format!("prefix {p:?}"),
            Select::Vectors => "vectors".into(),
            Select::Predicate(_) => "predicate".into(),
        };
        f.debug_struct("ParamGroup")
            .field("select", &format_args!("{select}"))
            .field("lr_scale", &self.lr_scale)
            .field("weight_decay", &self.weight_decay)
            .finish()
    }
}

impl ParamGroup {
    fn new(select: Select) -> Self {
        ParamGroup { select, lr_scale: 1.0, weight_decay: None }
    }

    /// The parameters named `prefix` or under it: `prefix("backbone")` holds
    /// `backbone.fc1.weight` but not `backbone2.weight`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self::new(Select::Prefix(prefix.into()))
    }

    /// Parameters of rank 0 or 1: every bias and the weights and biases of batch and layer
    /// norms (the usual "no weight decay on biases and norms").
    pub fn vectors() -> Self {
        Self::new(Select::Vectors)
    }

    /// The parameters whose `state_dict` name (`fc1.bias`) `select` accepts.
    pub fn matching(select: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self::new(Select::Predicate(Arc::new(select)))
    }

    /// The group's learning rate as a multiple of the optimizer's (1 by default).
    pub fn lr_scale(mut self, scale: f64) -> Self {
        self.lr_scale = scale;
        self
    }

    /// The group's weight decay, in place of the optimizer's.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }

    fn selects(&self, name: &str, shape: &[usize]) -> bool {
        match &self.select {
            Select::Prefix(p) => under(name, p),
            Select::Vectors => shape.len() <= 1,
            Select::Predicate(f) => f(name),
        }
    }
}

/// Whether `name` is `prefix` or a name under it (at a dot).
pub(crate) fn under(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// A parameter's learning rate and weight decay, from its group or the optimizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Settings {
    pub(super) lr: f64,
    pub(super) weight_decay: f64,
}

/// An optimizer's groups and which group each parameter (by visiting index) fell in.
#[derive(Clone, Debug, Default)]
pub(super) struct Groups {
    groups: Vec<ParamGroup>,
    /// Per parameter, 1 + its group's index, or 0 for none; found on the first step.
    assigned: Vec<usize>,
}

impl Groups {
    pub(super) fn push(&mut self, group: ParamGroup) {
        self.groups.push(group);
        self.assigned.clear();
    }

    /// Finds each parameter's group once (names are formatted, so only on the first step).
    pub(super) fn assign<T: Float, N: Params<T>>(&mut self, net: &N) {
        if self.groups.is_empty() || !self.assigned.is_empty() {
            return;
        }
        let groups = &self.groups;
        let assigned = &mut self.assigned;
        net.visit_params(&ParamPath::ROOT, &mut |p| {
            let name = p.name.to_string();
            assigned.push(groups.iter().position(|g| g.selects(&name, p.shape)).map_or(0, |g| g + 1));
        });
    }

    /// The settings of parameter `index` once [`Groups::assign`]ed, from the optimizer's `base`.
    pub(super) fn settings(&self, index: usize, base: Settings) -> Settings {
        match self.assigned.get(index).and_then(|g| g.checked_sub(1)).and_then(|g| self.groups.get(g)) {
            None => base,
            Some(g) => g.apply(base),
        }
    }

    /// The settings of a parameter met by name (the `update` path, which formats it).
    pub(super) fn settings_of(&self, name: &ParamPath<'_>, shape: &[usize], base: Settings) -> Settings {
        if self.groups.is_empty() {
            return base;
        }
        let name = name.to_string();
        self.groups.iter().find(|g| g.selects(&name, shape)).map_or(base, |g| g.apply(base))
    }

    /// Every distinct setting a step may use: the optimizer's and each group's (to check them once).
    pub(super) fn all(&self, base: Settings) -> impl Iterator<Item = Settings> + '_ {
        std::iter::once(base).chain(self.groups.iter().map(move |g| g.apply(base)))
    }
}

impl ParamGroup {
    fn apply(&self, base: Settings) -> Settings {
        Settings { lr: base.lr * self.lr_scale, weight_decay: self.weight_decay.unwrap_or(base.weight_decay) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_select_by_prefix_rank_and_predicate() {
        assert!(under("backbone.fc1.weight", "backbone") && under("backbone", "backbone"));
        assert!(!under("backbone2.weight", "backbone") && !under("back", "backbone"));
        let base = Settings { lr: 0.1, weight_decay: 0.01 };
        let mut groups = Groups::default();
        groups.push(ParamGroup::prefix("head").lr_scale(2.0));
        groups.push(ParamGroup::vectors().weight_decay(0.0));
        groups.push(ParamGroup::matching(|n| n.ends_with("weight")).lr_scale(0.5));
        let at = |name: &str, shape: &[usize]| {
            let root = ParamPath::ROOT;
            let mut parts = name.split('.');
            let first = parts.next().unwrap_or_default();
            let second = parts.next().unwrap_or_default();
            let a = root.join(first);
            groups.settings_of(&a.join(second), shape, base)
        };
        assert_eq!(at("head.bias", &[3]), Settings { lr: 0.2, weight_decay: 0.01 }, "first group wins");
        assert_eq!(at("fc1.bias", &[3]), Settings { lr: 0.1, weight_decay: 0.0 });
        assert_eq!(at("fc1.weight", &[3, 4]), Settings { lr: 0.05, weight_decay: 0.01 });
        assert_eq!(groups.all(base).count(), 4);
        assert!(format!("{:?}", ParamGroup::prefix("x")).contains("prefix \"x\""));
    }
}
