//! Text for character-level language models: a vocabulary of characters, and
//! datasets of windows whose targets are the next character at every step.

use super::Dataset;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::loss::StepLabels;
use crate::tensor::Batch;
use std::path::Path;

/// The characters a model knows, sorted; a character's id is its position.
///
/// ```
/// use staticnet_core::data::text::CharVocab;
///
/// let vocab = CharVocab::from_text("hello world");
/// assert_eq!(vocab.len(), 8); // ' ', d, e, h, l, o, r, w
/// let ids = vocab.encode("hold").unwrap();
/// assert_eq!(vocab.decode(&ids).unwrap(), "hold");
/// assert!(vocab.encode("help!").is_err()); // '!' and 'p' were never seen
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharVocab {
    chars: Vec<char>,
}

impl CharVocab {
    /// The distinct characters of `text`, sorted.
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        CharVocab { chars }
    }

    /// How many characters it knows (the model's vocabulary size).
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether it knows no character.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters, in id order; [`CharVocab::from_text`] of them gives this vocabulary back.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The id of every character of `text`; a character the vocabulary does not
    /// know is an error naming it and its line and column (counted from 1).
    pub fn encode(&self, text: &str) -> Result<Vec<usize>> {
        let (mut line, mut column) = (1, 0);
        text.chars()
            .map(|c| {
                (line, column) = if c == '\n' { (line + 1, 0) } else { (line, column + 1) };
                self.chars.binary_search(&c).map_err(|_| Error::UnknownCharacter {
                    character: c,
                    line,
                    column,
                })
            })
            .collect()
    }

    /// The text of `ids`; an id the vocabulary does not have is an error.
    pub fn decode(&self, ids: &[usize]) -> Result<String> {
        ids.iter()
            .enumerate()
            .map(|(step, &id)| {
                self.chars.get(id).copied().ok_or(Error::TokenOutOfRange {
                    token: id as f64,
                    sample: 0,
                    step,
                    vocab: self.len(),
                })
            })
            .collect()
    }
}

/// Reads a UTF-8 text file (a regular file: a FIFO or device is refused at once).
pub fn read_text(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let bytes = crate::fs::read_regular(path, "text")?;
    String::from_utf8(bytes).map_err(|e| Error::Io {
        path: path.into(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

/// Windows of `STEPS` ids starting every `stride` ids, each with the id that
/// follows at every step as its targets (a language model's data): window `i`
/// is `ids[s..s + STEPS]` with targets `ids[s + 1..s + STEPS + 1]`, `s = i·stride`.
/// The ids travel as whole numbers in the features, as `Embedding` expects.
///
/// ```
/// use staticnet_core::data::text::next_token_windows;
///
/// let data = next_token_windows::<f32, 3>(&[5, 6, 7, 8, 9, 10], 2).unwrap();
/// assert_eq!(data.len(), 2); // [5 6 7] → [6 7 8], [7 8 9] → [8 9 10]
/// assert_eq!(data.targets()[1], [8, 9, 10]);
/// ```
pub fn next_token_windows<T: Float, const STEPS: usize>(
    ids: &[usize],
    stride: usize,
) -> Result<Dataset<T, STEPS, StepLabels<STEPS>>> {
    if stride == 0 {
        return Err(Error::InvalidConfig("windows every 0 ids: the stride must be positive".into()));
    }
    let count = ids.len().checked_sub(STEPS + 1).map_or(0, |room| room / stride + 1);
    let starts: Vec<usize> = (0..count).map(|i| i * stride).collect();
    windows_at(ids, &starts)
}

/// The windows of [`next_token_windows`] that start at `starts` (e.g. drawn at
/// random for each stretch of training); a window that runs past the end of
/// `ids` is an error.
pub fn windows_at<T: Float, const STEPS: usize>(
    ids: &[usize],
    starts: &[usize],
) -> Result<Dataset<T, STEPS, StepLabels<STEPS>>> {
    let mut features = Batch::<T, STEPS>::zeros(starts.len());
    let mut targets = Vec::with_capacity(starts.len());
    for (&start, mut column) in starts.iter().zip(features.column_iter_mut()) {
        let Some(window) = ids.get(start..start.saturating_add(STEPS + 1)) else {
            return Err(Error::InvalidConfig(format!(
                "a window of {STEPS} steps at {start} runs past the {} ids",
                ids.len()
            )));
        };
        column.iter_mut().zip(window).for_each(|(x, &id)| *x = T::cast(id as f64));
        targets.push(std::array::from_fn(|t| window[t + 1]));
    }
    Dataset::new(features, targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_by_sorted_position() {
        let vocab = CharVocab::from_text("ba\nab");
        assert_eq!(vocab.chars(), &['\n', 'a', 'b']);
        assert_eq!(vocab.encode("ab\nba").unwrap(), [1, 2, 0, 2, 1]);
        assert_eq!(vocab.decode(&[2, 1, 0]).unwrap(), "ba\n");
        assert!(matches!(
            vocab.decode(&[1, 3]),
            Err(Error::TokenOutOfRange { token: 3.0, step: 1, vocab: 3, .. })
        ));
    }

    #[test]
    fn an_unknown_character_names_its_line_and_column() {
        let vocab = CharVocab::from_text("ab\n");
        let err = vocab.encode("ab\nba\nbaz").unwrap_err();
        assert!(matches!(err, Error::UnknownCharacter { character: 'z', line: 3, column: 3 }), "{err:?}");
        assert!(err.to_string().contains("'z'"), "{err}");
    }

    #[test]
    fn windows_pair_each_step_with_the_next_id() {
        let ids: Vec<usize> = (0..10).collect();
        let data = next_token_windows::<f64, 4>(&ids, 3).unwrap();
        // Starts 0, 3 (5 would need ids up to 9 + 1).
        assert_eq!(data.len(), 2);
        assert_eq!(data.features().column(1).as_slice(), &[3.0, 4.0, 5.0, 6.0]);
        assert_eq!(data.targets(), &vec![[1, 2, 3, 4], [4, 5, 6, 7]]);
        assert_eq!(next_token_windows::<f64, 4>(&ids, 1).unwrap().len(), 6);
        assert_eq!(next_token_windows::<f64, 4>(&ids[..4], 1).unwrap().len(), 0);
        assert!(next_token_windows::<f64, 4>(&ids, 0).is_err());
        let picked = windows_at::<f64, 4>(&ids, &[5, 0]).unwrap();
        assert_eq!(picked.targets(), &vec![[6, 7, 8, 9], [1, 2, 3, 4]]);
        assert!(windows_at::<f64, 4>(&ids, &[6]).is_err());
    }
}
