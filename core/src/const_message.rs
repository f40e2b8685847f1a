//! Text built while compiling: the message of a nested network's size check,
//! which names the sizes only the compiler knows (a `const` panic formats a
//! `&str`, never a number). Generated code only; not part of the API.

/// The longest message kept; longer text is cut (at a character boundary).
const CAPACITY: usize = 1024;

/// Up to [`CAPACITY`] bytes of UTF-8 text, appended to in `const` code.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct ConstMessage {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl ConstMessage {
    /// An empty message.
    pub const fn new() -> Self {
        ConstMessage { bytes: [0; CAPACITY], len: 0 }
    }

    /// The message followed by `text`.
    pub const fn text(mut self, text: &str) -> Self {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() && self.len < CAPACITY {
            self.bytes[self.len] = b[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    /// The message followed by `n` in decimal.
    pub const fn number(mut self, mut n: usize) -> Self {
        let mut digits = [0u8; 20];
        let mut k = 0;
        loop {
            digits[k] = b'0' + (n % 10) as u8;
            k += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while k > 0 && self.len < CAPACITY {
            k -= 1;
            self.bytes[self.len] = digits[k];
            self.len += 1;
        }
        self
    }

    /// The message followed by a shape as messages write it: `[1, 28, 28]`.
    pub const fn shape(mut self, dims: &[usize]) -> Self {
        self = self.text("[");
        let mut i = 0;
        while i < dims.len() {
            if i > 0 {
                self = self.text(", ");
            }
            self = self.number(dims[i]);
            i += 1;
        }
        self.text("]")
    }

    /// The text so far.
    pub const fn as_str(&self) -> &str {
        let (text, _) = self.bytes.split_at(self.len);
        match core::str::from_utf8(text) {
            Ok(s) => s,
            // Cut inside a character: keep what precedes it.
            Err(e) => match core::str::from_utf8(text.split_at(e.valid_up_to()).0) {
                Ok(s) => s,
                Err(_) => "",
            },
        }
    }
}

impl Default for ConstMessage {
    fn default() -> Self {
        ConstMessage::new()
    }
}

#[cfg(test)]
mod tests {
    use super::ConstMessage;

    #[test]
    fn builds_text_numbers_and_shapes_in_const_code() {
        const M: ConstMessage = ConstMessage::new().text("takes ").shape(&[1, 28, 28]).text(", ").number(0);
        assert_eq!(M.as_str(), "takes [1, 28, 28], 0");
        assert_eq!(ConstMessage::new().shape(&[]).number(usize::MAX).as_str(), "[]18446744073709551615");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let mut m = ConstMessage::new().text(&"a".repeat(1023));
        m = m.text("×");
        assert_eq!(m.as_str(), "a".repeat(1023));
    }
}
