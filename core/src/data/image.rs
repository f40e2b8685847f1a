//! Greyscale images from PNG files, for classifying digits drawn or scanned elsewhere
//! (reading them needs the `png` feature, on by default).

#[cfg(feature = "png")]
use crate::error::{Error, Result};
#[cfg(feature = "png")]
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

#[cfg(feature = "png")]
/// The most pixels an image may declare; larger headers are refused before decoding.
const MAX_PIXELS: u64 = 1 << 26;

#[cfg(feature = "png")]
/// The most a deflate stream can expand: 258 bytes from every 2 bits, about 1032:1.
const MAX_INFLATION: u64 = 1032;

#[cfg(feature = "png")]
/// Reads a PNG of any colour type and bit depth as 8-bit greyscale
/// (colour is averaged, alpha composited onto black, 16-bit values rounded).
pub fn read_png(path: impl AsRef<Path>) -> Result<GreyImage> {
    let path = path.as_ref();
    let bytes = crate::fs::read_regular(path, "a PNG image")?;
    decode_png(&bytes, path)
}

#[cfg(feature = "png")]
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
    // png 0.18.1 panics expanding a palette whose length is not a multiple of 3
    // (image-rs/image-png#694, found by fuzzing); the PNG specification makes it an error.
    if let Some(palette) = info.palette.as_deref() {
        if palette.len() % 3 != 0 {
            return Err(bad(&format!(
                "the palette (PLTE chunk) holds {} bytes, not a multiple of 3",
                palette.len()
            )));
        }
    }
    // A zlib stream inflates at most 1032-fold, so a header declaring more
    // image data than the file could hold compressed is refused before the
    // pixel buffer is allocated for it.
    let raw = info.raw_bytes() as u64;
    if raw > (bytes.len() as u64).saturating_mul(MAX_INFLATION) {
        return Err(bad(&format!(
            "the header declares {width}×{height} pixels ({raw} bytes of image data) but the file's {} bytes cannot hold them",
            bytes.len()
        )));
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

#[cfg(all(test, feature = "png"))]
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

    /// `png` with its IHDR width and height replaced (and the chunk's CRC fixed).
    fn with_size(png: &[u8], width: u32, height: u32) -> Vec<u8> {
        let mut out = png.to_vec();
        // Signature (8), IHDR length (4), "IHDR" (4), then width and height.
        out[16..20].copy_from_slice(&width.to_be_bytes());
        out[20..24].copy_from_slice(&height.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&out[12..29]);
        out[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        out
    }

    #[test]
    fn a_declared_size_larger_than_the_data_is_refused_before_allocating() {
        let small = encode(1, 1, png::ColorType::Rgba, &[1, 2, 3, 4]);
        assert!(decode_png(&with_size(&small, 1, 1), "same.png").is_ok());
        // 8192×8192 RGBA (256 MiB of pixels) declared by an 80-byte file.
        let e = decode_png(&with_size(&small, 8192, 8192), "bomb.png").unwrap_err().to_string();
        assert!(e.contains("declares 8192×8192 pixels") && e.contains("cannot hold them"), "{e}");
        // Beyond the pixel limit.
        let e = decode_png(&with_size(&small, 1 << 20, 1 << 20), "huge.png").unwrap_err().to_string();
        assert!(e.contains("more than this reader accepts"), "{e}");
    }

    /// A PNG chunk: length, type, data, CRC.
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }

    /// A 1×1 indexed PNG (8 bits) with the given PLTE chunk and pixel index 0.
    fn indexed(palette: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut out, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 3, 0, 0, 0]);
        chunk(&mut out, b"PLTE", palette);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&[0, 0]).unwrap();
        chunk(&mut out, b"IDAT", &z.finish().unwrap());
        chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn a_palette_whose_length_is_not_a_multiple_of_3_is_an_error_not_a_panic() {
        let grey = decode_png(&indexed(&[90, 90, 90]), "ok.png").unwrap();
        assert_eq!(grey.pixels, vec![90]);
        for len in [4, 5, 7, 8, 521] {
            let e = decode_png(&indexed(&vec![7; len]), "plte.png").unwrap_err().to_string();
            assert_eq!(
                e,
                format!("plte.png: not a readable PNG image: the palette (PLTE chunk) holds {len} bytes, not a multiple of 3")
            );
        }
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
