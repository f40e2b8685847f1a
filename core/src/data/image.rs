//! Greyscale images from PNG files, for classifying digits drawn or scanned elsewhere.

use crate::error::{Error, Result};
use std::path::Path;

/// An 8-bit greyscale image, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreyImage {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width × height` values, 0 = black, 255 = white.
    pub pixels: Vec<u8>,
}

/// The most pixels an image may declare; larger headers are refused before decoding.
const MAX_PIXELS: u64 = 1 << 26;

/// Reads a PNG of any colour type and bit depth as 8-bit greyscale
/// (colour is averaged, alpha composited onto black, 16-bit values rounded).
pub fn read_png(path: impl AsRef<Path>) -> Result<GreyImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_png(&bytes, path)
}

/// Decodes PNG bytes; `path` only labels errors.
pub fn decode_png(bytes: &[u8], path: impl AsRef<Path>) -> Result<GreyImage> {
    let path = path.as_ref();
    let bad = |e: &dyn std::fmt::Display| Error::format(path, format!("not a readable PNG image: {e}"));
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| bad(&e))?;
    let info = reader.info();
    let (width, height) = (info.width as usize, info.height as usize);
    if (width as u64) * (height as u64) > MAX_PIXELS {
        return Err(bad(&format!("{width}×{height} pixels is more than this reader accepts")));
    }
    let size = reader.output_buffer_size().ok_or_else(|| bad(&"the image is too large"))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(|e| bad(&e))?;
    let channels = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(bad(&"an indexed image was not expanded")),
    };
    let row = frame.line_size;
    let mut pixels = Vec::with_capacity(width * height);
    for r in 0..height {
        let line = &buf[r * row..r * row + width * channels];
        for px in line.chunks_exact(channels) {
            let (colour, alpha) = match channels {
                1 => (px[0] as u32, 255),
                2 => (px[0] as u32, px[1] as u32),
                3 => ((px[0] as u32 + px[1] as u32 + px[2] as u32) / 3, 255),
                _ => ((px[0] as u32 + px[1] as u32 + px[2] as u32) / 3, px[3] as u32),
            };
            pixels.push((colour * alpha / 255) as u8);
        }
    }
    Ok(GreyImage { width, height, pixels })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(width: u32, height: u32, colour: png::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(colour);
            enc.set_depth(png::BitDepth::Eight);
            enc.write_header().unwrap().write_image_data(data).unwrap();
        }
        out
    }

    #[test]
    fn reads_grey_rgb_and_alpha_images() {
        let grey = decode_png(&encode(2, 1, png::ColorType::Grayscale, &[0, 200]), "g.png").unwrap();
        assert_eq!(grey, GreyImage { width: 2, height: 1, pixels: vec![0, 200] });
        let rgb = decode_png(&encode(1, 1, png::ColorType::Rgb, &[30, 60, 90]), "c.png").unwrap();
        assert_eq!(rgb.pixels, vec![60]);
        let rgba = decode_png(&encode(1, 1, png::ColorType::Rgba, &[255, 255, 255, 51]), "a.png").unwrap();
        assert_eq!(rgba.pixels, vec![51]);
    }

    #[test]
    fn the_bundled_samples_are_mnist_digits() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples");
        let img = read_png(dir.join("test1_label8.png")).unwrap();
        assert_eq!((img.width, img.height), (28, 28));
        assert!(img.pixels.iter().any(|&p| p > 200));
    }

    #[test]
    fn broken_files_are_errors() {
        let good = encode(4, 4, png::ColorType::Grayscale, &[7; 16]);
        for cut in [0, 8, 20, good.len() / 2, good.len() - 13] {
            let e = decode_png(&good[..cut], "cut.png").unwrap_err().to_string();
            assert!(e.starts_with("cut.png: not a readable PNG image"), "{cut}: {e}");
        }
        assert!(decode_png(b"GIF89a", "x.gif").is_err());
        assert!(matches!(read_png("/nonexistent.png"), Err(Error::Io { .. })));
    }
}
