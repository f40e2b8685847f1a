//! The IDX format of MNIST and friends, raw or gzip-compressed.
//!
//! Layout: two zero bytes, a type code, the number of dimensions `d`, then `d`
//! big-endian `u32` sizes, then the values, big-endian, row-major.

use crate::error::{Error, Result, ShowPath};
use std::io::Read;
use std::path::Path;

/// The values of an IDX file, in the type the file declares.
#[derive(Clone, Debug, PartialEq)]
pub enum IdxData {
    /// Type code `0x08`.
    U8(Vec<u8>),
    /// Type code `0x09`.
    I8(Vec<i8>),
    /// Type code `0x0B`.
    I16(Vec<i16>),
    /// Type code `0x0C`.
    I32(Vec<i32>),
    /// Type code `0x0D`.
    F32(Vec<f32>),
    /// Type code `0x0E`.
    F64(Vec<f64>),
}

/// An n-dimensional array read from an IDX file.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxArray {
    /// The sizes of each dimension, outermost first (`[n, 28, 28]` for MNIST images).
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: IdxData,
}

impl IdxArray {
    /// The values as `u8`, or `None` if the file holds another type.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match &self.data {
            IdxData::U8(v) => Some(v),
            _ => None,
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads an IDX file; gzip compression is detected from the content, not the name.
pub fn read(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let file = crate::fs::open_regular(path, "an IDX file")?;
    let mut reader = std::io::BufReader::new(file);
    let mut magic = [0u8; 2];
    let peeked = {
        use std::io::BufRead;
        let buf = reader.fill_buf().map_err(|e| Error::io(path, e))?;
        let n = buf.len().min(2);
        magic[..n].copy_from_slice(&buf[..n]);
        n
    };
    if peeked == 2 && magic == GZIP_MAGIC {
        parse_from(flate2::read::GzDecoder::new(reader), path)
    } else {
        parse_from(reader, path)
    }
}

/// Parses IDX content from memory; `path` only labels errors.
pub fn parse(bytes: &[u8], path: impl AsRef<Path>) -> Result<IdxArray> {
    parse_from(bytes, path.as_ref())
}

fn parse_from(mut r: impl Read, path: &Path) -> Result<IdxArray> {
    let bad = |reason: String| Error::format(path, format!("not a valid IDX file: {reason}"));
    let mut head = [0u8; 4];
    read_exact(&mut r, &mut head, path, "the 4-byte magic number")?;
    if head[0] != 0 || head[1] != 0 {
        return Err(bad(format!(
            "the magic number must start with two zero bytes, found {:02x} {:02x}",
            head[0], head[1]
        )));
    }
    let (type_code, ndim) = (head[2], head[3] as usize);
    let width = match type_code {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        other => return Err(bad(format!("unknown type code 0x{other:02x}"))),
    };
    if ndim == 0 {
        return Err(bad("zero dimensions".into()));
    }
    let mut dims = Vec::with_capacity(ndim);
    for k in 0..ndim {
        let mut d = [0u8; 4];
        read_exact(&mut r, &mut d, path, &format!("the size of dimension {k}"))?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    let bytes = dims
        .iter()
        .try_fold(width, |acc: usize, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    // Read through `take` so memory grows only with data actually present: a
    // header that claims 10^9 images cannot make us allocate for them.
    let mut raw = Vec::new();
    r.by_ref().take(bytes as u64).read_to_end(&mut raw).map_err(|e| Error::io(path, e))?;
    if raw.len() < bytes {
        return Err(bad(format!(
            "the header declares {dims:?} ({bytes} bytes of data) but only {} bytes follow",
            raw.len()
        )));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra).map_err(|e| Error::io(path, e))? != 0 {
        return Err(bad(format!("data continues past the {bytes} bytes the header declares for {dims:?}")));
    }
    let data = match type_code {
        0x08 => IdxData::U8(raw),
        0x09 => IdxData::I8(raw.into_iter().map(|b| b as i8).collect()),
        0x0B => IdxData::I16(raw.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()),
        0x0C => {
            IdxData::I32(raw.chunks_exact(4).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        0x0D => {
            IdxData::F32(raw.chunks_exact(4).map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        _ => IdxData::F64(
            raw.chunks_exact(8)
                .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
    };
    Ok(IdxArray { dims, data })
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], path: &Path, what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            Error::format(path, format!("not a valid IDX file: it ends before {what}"))
        }
        _ => Error::io(path, e),
    })
}

/// Writes a `u8` IDX file (uncompressed), atomically as [`crate::persist::write_atomic`]
/// does; used by tests and tools that make data.
pub fn write_u8(path: impl AsRef<Path>, dims: &[usize], data: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if expected != Some(data.len()) || dims.is_empty() || dims.len() > 255 {
        let expected = match expected {
            Some(n) => format!("{dims:?} = {n} values"),
            None => format!("{dims:?} = more values than fit in memory"),
        };
        return Err(Error::Shape {
            what: format!("IDX data for {}", ShowPath(path)),
            expected,
            found: format!("{} values", data.len()),
        });
    }
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        let d =
            u32::try_from(d).map_err(|_| Error::InvalidConfig(format!("IDX dimension {d} exceeds u32")))?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    crate::persist::write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn header(type_code: u8, dims: &[u32]) -> Vec<u8> {
        let mut v = vec![0, 0, type_code, dims.len() as u8];
        dims.iter().for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
        v
    }

    #[test]
    fn parses_every_type() {
        let mut b = header(0x08, &[2, 3]);
        b.extend_from_slice(&[1, 2, 3, 4, 5, 255]);
        let a = parse(&b, "t").unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.as_u8().unwrap(), &[1, 2, 3, 4, 5, 255]);

        let mut b = header(0x0B, &[2]);
        b.extend_from_slice(&[0xff, 0xfe, 0x01, 0x00]);
        assert_eq!(parse(&b, "t").unwrap().data, IdxData::I16(vec![-2, 256]));

        let mut b = header(0x0D, &[1]);
        b.extend_from_slice(&1.5f32.to_be_bytes());
        assert_eq!(parse(&b, "t").unwrap().data, IdxData::F32(vec![1.5]));

        let mut b = header(0x0E, &[1]);
        b.extend_from_slice(&(-0.25f64).to_be_bytes());
        assert_eq!(parse(&b, "t").unwrap().data, IdxData::F64(vec![-0.25]));

        let mut b = header(0x0C, &[1]);
        b.extend_from_slice(&(-7i32).to_be_bytes());
        assert_eq!(parse(&b, "t").unwrap().data, IdxData::I32(vec![-7]));

        let mut b = header(0x09, &[1]);
        b.push(0x80);
        assert_eq!(parse(&b, "t").unwrap().data, IdxData::I8(vec![-128]));
    }

    fn err(bytes: &[u8]) -> String {
        parse(bytes, "bad.idx").unwrap_err().to_string()
    }

    #[test]
    fn malformed_files_are_errors_naming_the_problem() {
        assert!(err(&[0, 0]).contains("ends before the 4-byte magic"));
        assert!(err(&[1, 0, 8, 1]).contains("two zero bytes"));
        assert!(err(&[0, 0, 0x42, 1, 0, 0, 0, 1, 0]).contains("unknown type code 0x42"));
        assert!(err(&[0, 0, 8, 0]).contains("zero dimensions"));
        assert!(err(&[0, 0, 8, 2, 0, 0, 0, 1]).contains("ends before the size of dimension 1"));
        let mut short = header(0x08, &[10]);
        short.extend_from_slice(&[1, 2, 3]);
        assert!(err(&short).contains("only 3 bytes follow"), "{}", err(&short));
        let mut long = header(0x08, &[1]);
        long.extend_from_slice(&[1, 2]);
        assert!(err(&long).contains("continues past"));
        assert!(err(&[0, 0, 8, 1]).starts_with("bad.idx: "));
    }

    #[test]
    fn a_huge_declared_size_is_refused_without_allocating_for_it() {
        // 10^9 images of 28×28: 784 GB declared, 4 bytes present.
        let mut b = header(0x08, &[1_000_000_000, 28, 28]);
        b.extend_from_slice(&[0, 0, 0, 0]);
        assert!(err(&b).contains("only 4 bytes follow"));
        // Sizes whose product overflows usize.
        let b = header(0x0E, &[u32::MAX, u32::MAX, u32::MAX]);
        assert!(err(&b).contains("overflow"));
    }

    #[test]
    fn reads_gzip_and_raw_files() {
        let dir = std::env::temp_dir().join(format!("staticnet-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("a.idx");
        write_u8(&raw, &[2, 2], &[9, 8, 7, 6]).unwrap();
        let gz = dir.join("a.idx.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&std::fs::read(&raw).unwrap()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read(&raw).unwrap(), read(&gz).unwrap());
        assert!(matches!(read(dir.join("missing")), Err(Error::Io { .. })));
        // A truncated gzip stream is an error, not a panic.
        let bytes = std::fs::read(&gz).unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        assert!(read(&gz).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
