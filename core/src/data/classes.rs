//! Class names by index, as read from a CSV label column or an image folder's subfolders.

/// The classes of a dataset: each class index's name, as read from the label column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Classes {
    names: Vec<String>,
}

impl Classes {
    /// Classes named in index order.
    pub fn new(names: Vec<String>) -> Self {
        Classes { names }
    }

    /// The number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Every class's name, by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The name of class `index`.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }

    /// The index of the class called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}
