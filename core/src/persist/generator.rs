//! The text form of a generator's state in checkpoint metadata.

use crate::init::SeededRng;
use rand::SeedableRng;

/// `chacha8:<seed hex>:<stream>:<word position>`.
pub(super) fn rng_to_string(rng: &SeededRng) -> String {
    let seed: String = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
    format!("chacha8:{seed}:{}:{}", rng.get_stream(), rng.get_word_pos())
}

/// The inverse of [`rng_to_string`]; `None` if `s` is not one.
pub(super) fn rng_from_str(s: &str) -> Option<SeededRng> {
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
