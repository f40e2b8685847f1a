//! Datasets from CSV files, read with the `csv` crate: a header or none, the
//! target column by name or position, class labels as integers or as names
//! (mapped to indices, the mapping returned as [`Classes`]), regression targets.
//!
//! ```no_run
//! # use staticnet_core::data::CsvReader;
//! // sepal_length,sepal_width,petal_length,petal_width,species
//! let (iris, classes) = CsvReader::new("data/iris.csv").target("species").classification::<f32, 4>()?;
//! # Ok::<(), staticnet_core::Error>(())
//! ```

use super::{Classes, Dataset};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::loss::Labels;
use crate::tensor::Batch;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A column of a CSV file: its header name, or its position from 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    /// The name in the header line.
    Name(String),
    /// The position, from 0.
    Index(usize),
}

impl From<&str> for Column {
    fn from(name: &str) -> Self {
        Column::Name(name.to_string())
    }
}

impl From<String> for Column {
    fn from(name: String) -> Self {
        Column::Name(name)
    }
}

impl From<usize> for Column {
    fn from(index: usize) -> Self {
        Column::Index(index)
    }
}

/// How the label column of a classification file is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LabelKind {
    /// Class indices if every label is a whole number, names otherwise (the default).
    #[default]
    Auto,
    /// Class indices (`0`, `1`, `2`…); any other cell is an error naming it.
    Integers,
    /// Names (`setosa`…), numbered in sorted order, even if they look like numbers.
    Names,
}

/// Reads a CSV file into a [`Dataset`]: every column a feature except the target
/// column(s) (the last column unless [`CsvReader::target`] says otherwise).
///
/// Errors name the file, and for a cell its line and column ([`Error::Cell`]):
/// a feature that is not a finite number, a label that is not a class index
/// with [`LabelKind::Integers`]. A row with another number of cells, a missing
/// column and a feature count other than the network's are errors too.
#[derive(Clone, Debug)]
pub struct CsvReader {
    path: PathBuf,
    header: bool,
    delimiter: u8,
    targets: Option<Vec<Column>>,
    labels: LabelKind,
}

/// A file's cells, row by row, with each row's line.
struct Table {
    names: Option<Vec<String>>,
    rows: Vec<(u64, Vec<String>)>,
}

impl CsvReader {
    /// A reader of `path`: a header line, commas, the target in the last column.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvReader { path: path.into(), header: true, delimiter: b',', targets: None, labels: LabelKind::Auto }
    }

    /// Whether the first line names the columns (yes by default).
    pub fn header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// The byte between cells (`b','` by default; `b';'`, `b'\t'`…).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The label (or single regression target) column, by name (`"species"`) or position (`4`).
    pub fn target(self, column: impl Into<Column>) -> Self {
        self.targets([column])
    }

    /// The regression target columns, in the order of the targets' rows.
    pub fn targets<C: Into<Column>>(mut self, columns: impl IntoIterator<Item = C>) -> Self {
        self.targets = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// How labels are read ([`LabelKind::Auto`] by default).
    pub fn labels(mut self, kind: LabelKind) -> Self {
        self.labels = kind;
        self
    }

    /// A classification dataset of `N` features and the classes its labels name.
    ///
    /// Integer labels are the class indices (classes `0` to the largest,
    /// named by their numbers); names are numbered in sorted order
    /// (`setosa` 0, `versicolor` 1, `virginica` 2).
    pub fn classification<T: Float, const N: usize>(&self) -> Result<(Dataset<T, N, Labels>, Classes)> {
        let table = self.read()?;
        let target = self.target_columns(&table, 1)?;
        let features = self.features_of::<T, N>(&table, &target)?;
        let (labels, classes) = self.labels_of(&table, target[0])?;
        Ok((Dataset::new(features, labels)?, classes))
    }

    /// A regression dataset of `N` features and `M` targets per row (the last
    /// `M` columns unless [`CsvReader::targets`] names them).
    pub fn regression<T: Float, const N: usize, const M: usize>(&self) -> Result<Dataset<T, N, Batch<T, M>>> {
        let table = self.read()?;
        let target = self.target_columns(&table, M)?;
        let features = self.features_of::<T, N>(&table, &target)?;
        Dataset::new(features, self.numbers::<T, M>(&table, &target)?)
    }

    /// Every column as `N` features, no target: inputs to predict on.
    pub fn features<T: Float, const N: usize>(&self) -> Result<Batch<T, N>> {
        let table = self.read()?;
        self.features_of::<T, N>(&table, &[])
    }

    fn read(&self) -> Result<Table> {
        let file = crate::fs::open_regular(&self.path, "a CSV file")?;
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(self.header)
            .delimiter(self.delimiter)
            .trim(::csv::Trim::All)
            .from_reader(file);
        let names = match self.header {
            true => {
                Some(reader.headers().map_err(|e| self.csv_error(e))?.iter().map(str::to_string).collect())
            }
            false => None,
        };
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| self.csv_error(e))?;
            let line = record.position().map_or(0, |p| p.line());
            rows.push((line, record.iter().map(str::to_string).collect()));
        }
        if rows.is_empty() {
            return Err(Error::format(&self.path, "the file holds no data rows"));
        }
        Ok(Table { names, rows })
    }

    fn csv_error(&self, e: ::csv::Error) -> Error {
        let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
        match e.into_kind() {
            ::csv::ErrorKind::Io(e) => Error::io(&self.path, e),
            ::csv::ErrorKind::UnequalLengths { expected_len, len, .. } => Error::format(
                &self.path,
                format!("{line}a row of {len} cells, but the rows before it have {expected_len}"),
            ),
            kind => Error::format(&self.path, format!("{line}not a readable CSV file: {kind:?}")),
        }
    }

    /// The target columns' positions: those given, or the last `default` columns.
    fn target_columns(&self, table: &Table, default: usize) -> Result<Vec<usize>> {
        let width = table.names.as_ref().map_or_else(|| table.rows[0].1.len(), Vec::len);
        let Some(columns) = &self.targets else {
            if width <= default {
                return Err(Error::format(
                    &self.path,
                    format!("{width} columns leave no features beside {default} targets"),
                ));
            }
            return Ok((width - default..width).collect());
        };
        if columns.len() != default {
            return Err(Error::InvalidConfig(format!(
                "{} target columns named for {default} targets per sample",
                columns.len()
            )));
        }
        columns.iter().map(|c| self.position(table, c, width)).collect()
    }

    fn position(&self, table: &Table, column: &Column, width: usize) -> Result<usize> {
        match (column, &table.names) {
            (Column::Index(i), _) if *i < width => Ok(*i),
            (Column::Index(i), _) => {
                Err(Error::format(&self.path, format!("no column {i}: the columns are 0 to {}", width - 1)))
            }
            (Column::Name(name), Some(names)) => names.iter().position(|n| n == name).ok_or_else(|| {
                Error::format(
                    &self.path,
                    format!("no column named `{name}`; the columns are {}", names.join(", ")),
                )
            }),
            (Column::Name(name), None) => Err(Error::InvalidConfig(format!(
                "column `{name}` is named but the reader has no header line: give its position instead"
            ))),
        }
    }

    /// The cell's column as messages show it: `` `name` (3) `` with a header, `3` without (from 1).
    fn column_label(&self, table: &Table, column: usize) -> String {
        match table.names.as_ref().and_then(|n| n.get(column)) {
            Some(name) => format!("`{name}` ({})", column + 1),
            None => (column + 1).to_string(),
        }
    }

    fn cell_error(&self, table: &Table, line: u64, column: usize, value: &str, reason: &str) -> Error {
        Error::Cell {
            path: self.path.clone(),
            line,
            column: self.column_label(table, column),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The columns other than `targets` as `N` features per sample.
    fn features_of<T: Float, const N: usize>(&self, table: &Table, targets: &[usize]) -> Result<Batch<T, N>> {
        let width = table.rows[0].1.len();
        let columns: Vec<usize> = (0..width).filter(|c| !targets.contains(c)).collect();
        if columns.len() != N {
            let names = columns.iter().map(|&c| self.column_label(table, c)).collect::<Vec<_>>().join(", ");
            return Err(Error::Shape {
                what: format!("features in {}", self.path.display()),
                expected: format!("{N} columns"),
                found: format!("{} columns ({names})", columns.len()),
            });
        }
        self.numbers::<T, N>(table, &columns)
    }

    /// The numbers in `columns` (`M` of them), one sample per row.
    fn numbers<T: Float, const M: usize>(&self, table: &Table, columns: &[usize]) -> Result<Batch<T, M>> {
        let mut values = Vec::with_capacity(table.rows.len() * M);
        for (line, cells) in &table.rows {
            for &c in columns {
                let cell = cells[c].as_str();
                match cell.parse::<f64>() {
                    Ok(v) if v.is_finite() => values.push(T::cast(v)),
                    Ok(_) => return Err(self.cell_error(table, *line, c, cell, "is not a finite number")),
                    Err(_) => return Err(self.cell_error(table, *line, c, cell, "is not a number")),
                }
            }
        }
        Ok(Batch::from_vec(values))
    }

    /// The label column as class indices, and the classes.
    fn labels_of(&self, table: &Table, column: usize) -> Result<(Labels, Classes)> {
        let cells = || table.rows.iter().map(|(line, cells)| (*line, cells[column].as_str()));
        let integers = match self.labels {
            LabelKind::Integers => true,
            LabelKind::Names => false,
            LabelKind::Auto => cells().all(|(_, c)| c.parse::<usize>().is_ok()),
        };
        if integers {
            let mut labels = Vec::with_capacity(table.rows.len());
            for (line, cell) in cells() {
                let reason = "is not a class index (a whole number from 0)";
                labels.push(
                    cell.parse::<usize>().map_err(|_| self.cell_error(table, line, column, cell, reason))?,
                );
            }
            let count = labels.iter().max().map_or(0, |m| m + 1);
            return Ok((labels, Classes::new((0..count).map(|i| i.to_string()).collect())));
        }
        let names: Vec<String> =
            cells().map(|(_, c)| c.to_string()).collect::<BTreeSet<_>>().into_iter().collect();
        let labels =
            cells().map(|(_, c)| names.binary_search_by(|n| n.as_str().cmp(c)).unwrap_or(0)).collect();
        Ok((labels, Classes::new(names)))
    }
}

/// Shorthand for `CsvReader::new(path).target(target).classification()`.
pub fn read_classification<T: Float, const N: usize>(
    path: impl AsRef<Path>,
    target: impl Into<Column>,
) -> Result<(Dataset<T, N, Labels>, Classes)> {
    CsvReader::new(path.as_ref()).target(target).classification()
}

#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
