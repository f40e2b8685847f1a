//! MNIST-style digit data: IDX image and label files in a directory.

use super::idx::{self, IdxArray};
use super::Dataset;
use crate::error::{Error, Result, ShowPath};
use crate::float::Float;
use crate::loss::Labels;
use crate::tensor::Batch;
use std::path::{Path, PathBuf};

/// Pixels per image: 28×28.
pub const PIXELS: usize = 28 * 28;
/// Digit classes.
pub const CLASSES: usize = 10;

/// A training and a test split of digits, pixels scaled to [0, 1].
pub struct Mnist<T: Float> {
    /// The training split (`train-*` files).
    pub train: Dataset<T, PIXELS, Labels>,
    /// The test split (`t10k-*` files).
    pub test: Dataset<T, PIXELS, Labels>,
}

/// Loads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
/// and `t10k-labels-idx1-ubyte` from `dir`, each either raw or with a `.gz` suffix.
pub fn load<T: Float>(dir: impl AsRef<Path>) -> Result<Mnist<T>> {
    let dir = dir.as_ref();
    Ok(Mnist { train: load_split(dir, "train")?, test: load_split(dir, "t10k")? })
}

/// Loads one split (`prefix` is `train` or `t10k`) from `dir`.
pub fn load_split<T: Float>(dir: &Path, prefix: &str) -> Result<Dataset<T, PIXELS, Labels>> {
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = images_from_idx(&idx::read(&images_path)?, &images_path)?;
    let labels = labels_from_idx(&idx::read(&labels_path)?, &labels_path)?;
    Dataset::new(images, labels)
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let raw = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    [gz, raw.clone()].into_iter().find(|p| p.is_file()).ok_or_else(|| {
        Error::io(
            raw,
            std::io::Error::new(std::io::ErrorKind::NotFound, "neither this file nor its .gz was found"),
        )
    })
}

/// 28×28 `u8` images to a batch scaled to [0, 1].
pub fn images_from_idx<T: Float>(array: &IdxArray, path: &Path) -> Result<Batch<T, PIXELS>> {
    let pixels = match (array.as_u8(), array.dims.as_slice()) {
        // `IdxArray`'s fields are public: the values must also be as many as the dimensions say.
        (Some(p), &[n, 28, 28]) if n.checked_mul(PIXELS) == Some(p.len()) => p,
        _ => {
            return Err(Error::Shape {
                what: format!("images in {}", ShowPath(path)),
                expected: "u8 values of shape [n, 28, 28]".into(),
                found: match (array.as_u8(), array.dims.as_slice()) {
                    (Some(p), [_, 28, 28]) => format!("{} u8 values for shape {:?}", p.len(), array.dims),
                    _ => format!("{} values of shape {:?}", type_name(array), array.dims),
                },
            })
        }
    };
    let scale = T::cast(1.0 / 255.0);
    Ok(Batch::from_iterator(pixels.len() / PIXELS, pixels.iter().map(|&p| T::cast(p as f64) * scale)))
}

/// A 28×28 greyscale image as one sample scaled to [0, 1], like the MNIST digits
/// (white digit on black). Other sizes are a [`Error::Shape`].
pub fn sample_from_image<T: Float>(image: &super::image::GreyImage, path: &Path) -> Result<Batch<T, PIXELS>> {
    if (image.width, image.height) != (28, 28) || image.pixels.len() != PIXELS {
        return Err(Error::Shape {
            what: format!("digit image {}", ShowPath(path)),
            expected: "28×28 pixels, like MNIST".into(),
            found: match image.pixels.len() {
                n if n == image.width.saturating_mul(image.height) => {
                    format!("{}×{} pixels", image.width, image.height)
                }
                n => format!("{n} pixel values for {}×{}", image.width, image.height),
            },
        });
    }
    let scale = T::cast(1.0 / 255.0);
    Ok(Batch::from_iterator(1, image.pixels.iter().map(|&p| T::cast(p as f64) * scale)))
}

/// `u8` labels `0..10`.
pub fn labels_from_idx(array: &IdxArray, path: &Path) -> Result<Labels> {
    let labels = match (array.as_u8(), array.dims.as_slice()) {
        (Some(l), [_]) => l,
        _ => {
            return Err(Error::Shape {
                what: format!("labels in {}", ShowPath(path)),
                expected: "u8 values of shape [n]".into(),
                found: format!("{} values of shape {:?}", type_name(array), array.dims),
            })
        }
    };
    if let Some(sample) = labels.iter().position(|&l| l as usize >= CLASSES) {
        return Err(Error::LabelOutOfRange { label: labels[sample] as usize, sample, classes: CLASSES });
    }
    Ok(labels.iter().map(|&l| l as usize).collect())
}

fn type_name(array: &IdxArray) -> &'static str {
    match array.data {
        idx::IdxData::U8(_) => "u8",
        idx::IdxData::I8(_) => "i8",
        idx::IdxData::I16(_) => "i16",
        idx::IdxData::I32(_) => "i32",
        idx::IdxData::F32(_) => "f32",
        idx::IdxData::F64(_) => "f64",
    }
}

/// The images shifted by `dx` columns and `dy` rows (positive: right and down),
/// filling with background: a cheap augmentation that teaches small translations.
pub fn shifted<T: Float>(
    data: &Dataset<T, PIXELS, Labels>,
    dx: isize,
    dy: isize,
) -> Dataset<T, PIXELS, Labels> {
    // A shift of 28 or more leaves only background; clamping keeps the arithmetic from overflowing.
    let (dx, dy) = (dx.clamp(-28, 28), dy.clamp(-28, 28));
    let src = data.features();
    let mut out = Batch::<T, PIXELS>::zeros(src.ncols());
    for (from, mut to) in src.column_iter().zip(out.column_iter_mut()) {
        for row in 0..28isize {
            for col in 0..28isize {
                let (r, c) = (row - dy, col - dx);
                if (0..28).contains(&r) && (0..28).contains(&c) {
                    to[(row * 28 + col) as usize] = from[(r * 28 + c) as usize];
                }
            }
        }
    }
    Dataset { features: out, targets: data.targets().clone() }
}

/// `data` followed by its copies shifted one pixel up, down, left and right: five times the samples.
pub fn with_shifts<T: Float>(data: &Dataset<T, PIXELS, Labels>) -> Dataset<T, PIXELS, Labels> {
    let parts = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)].map(|(dx, dy)| shifted(data, dx, dy));
    let n = data.len();
    let mut features = Batch::<T, PIXELS>::zeros(5 * n);
    let mut targets = Vec::with_capacity(5 * n);
    for (k, part) in parts.iter().enumerate() {
        features.columns_mut(k * n, n).copy_from(part.features());
        targets.extend_from_slice(part.targets());
    }
    Dataset { features, targets }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_data() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
    }

    #[test]
    fn loads_the_bundled_digits() {
        let m = load::<f32>(repo_data()).unwrap();
        assert_eq!((m.train.len(), m.test.len()), (8000, 1002));
        // Per-class counts from data/mnist/README.md.
        let mut counts = [0usize; 10];
        m.test.targets().iter().for_each(|&l| counts[l] += 1);
        assert_eq!(counts, [100, 113, 99, 103, 98, 87, 102, 107, 95, 98]);
        let px = m.train.features();
        assert!(px.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert!(px.iter().any(|&p| p == 1.0));
    }

    #[test]
    fn wrong_image_size_is_a_shape_error() {
        let a = IdxArray { dims: vec![1, 32, 32], data: idx::IdxData::U8(vec![0; 1024]) };
        let e = images_from_idx::<f32>(&a, Path::new("x")).unwrap_err().to_string();
        assert!(e.contains("[1, 32, 32]") && e.contains("[n, 28, 28]"), "{e}");
    }

    #[test]
    fn images_become_samples_only_at_28_by_28() {
        let digit = crate::data::image::GreyImage { width: 28, height: 28, pixels: vec![255; 784] };
        let x = sample_from_image::<f32>(&digit, Path::new("d.png")).unwrap();
        assert_eq!((x.ncols(), x[(783, 0)]), (1, 1.0));
        let big = crate::data::image::GreyImage { width: 32, height: 32, pixels: vec![0; 1024] };
        let e = sample_from_image::<f32>(&big, Path::new("big.png")).unwrap_err().to_string();
        assert_eq!(e, "digit image big.png: expected 28×28 pixels, like MNIST, found 32×32 pixels");
    }

    #[test]
    fn labels_out_of_range_are_errors() {
        let a = IdxArray { dims: vec![2], data: idx::IdxData::U8(vec![3, 12]) };
        assert!(matches!(
            labels_from_idx(&a, Path::new("x")),
            Err(Error::LabelOutOfRange { label: 12, sample: 1, .. })
        ));
    }

    #[test]
    fn shifts_move_pixels_and_fill_with_background() {
        let mut x = Batch::<f32, PIXELS>::zeros(1);
        x[(0, 0)] = 1.0; // top-left corner
        x[(27 * 28 + 27, 0)] = 0.5; // bottom-right corner
        let d = Dataset::new(x, vec![3]).unwrap();
        let right = shifted(&d, 1, 0);
        assert_eq!(right.features()[(1, 0)], 1.0);
        assert_eq!(right.features().sum(), 1.0, "the bottom-right pixel falls off the edge");
        let up = shifted(&d, 0, -1);
        assert_eq!(up.features()[(26 * 28 + 27, 0)], 0.5);
        let all = with_shifts(&d);
        assert_eq!(all.len(), 5);
        assert_eq!(all.targets(), &vec![3; 5]);
        assert_eq!(all.features().column(0), d.features().column(0));
    }

    #[test]
    fn a_missing_directory_is_an_io_error() {
        assert!(matches!(load::<f32>("/nonexistent/mnist"), Err(Error::Io { .. })));
    }

    #[test]
    fn shifts_of_any_size_leave_background_and_never_overflow() {
        let x = Batch::<f32, PIXELS>::from_element(2, 1.0);
        let data = Dataset::new(x, vec![1, 2]).unwrap();
        for (dx, dy) in [(isize::MIN, 0), (0, isize::MAX), (28, -28), (-100, 3)] {
            let s = shifted(&data, dx, dy);
            assert!(s.features().iter().all(|&v| v == 0.0), "{dx} {dy}");
            assert_eq!(s.targets(), &vec![1, 2]);
        }
        assert_eq!(shifted(&data, 27, 0).features().iter().filter(|&&v| v == 1.0).count(), 2 * 28);
    }
}
