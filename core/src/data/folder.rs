//! A classification dataset from a folder of images per class,
//! `root/<class>/*.png|jpg` (feature `image-folder`, decoding with the `image`
//! crate), as torchvision's `ImageFolder`: classes numbered in sorted order,
//! pixels scaled to [0, 1], samples channel-first `[C, H, W]`.
//!
//! ```no_run
//! # use staticnet_core::data::folder::ImageFolder;
//! // root/cat/1.png, root/dog/a.jpg…: greyscale 28×28 samples, resized if needed.
//! let (data, classes) = ImageFolder::new("root").resize(true).load::<f32, 784>(&[1, 28, 28])?;
//! # Ok::<(), staticnet_core::Error>(())
//! ```

use super::{Classes, Dataset};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::loss::Labels;
use image::imageops::FilterType;
use image::{DynamicImage, ImageReader};
use std::path::{Path, PathBuf};

/// The file extensions read as images (in any case); other files are skipped.
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Reads `root/<class>/<image>` into a dataset: see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    resize: bool,
}

impl ImageFolder {
    /// A loader of the class folders under `root`, checking image sizes.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ImageFolder { root: root.into(), resize: false }
    }

    /// Whether images of another size are resized to the shape (bilinear,
    /// aspect ratio not kept) rather than refused (the default).
    pub fn resize(mut self, resize: bool) -> Self {
        self.resize = resize;
        self
    }

    /// Every image as a sample of `shape` = `[C, H, W]` (`N = C·H·W` values),
    /// greyscale for `C = 1` and RGB for `C = 3`, scaled to [0, 1], with the
    /// index of its class folder (folders sorted by name; hidden ones and
    /// files at the root are skipped), and the classes' names. A network's
    /// `INPUT_SHAPE` is such a shape.
    ///
    /// Errors: a shape that is not `[1 or 3, H, W]` of `N` values
    /// ([`Error::Shape`]); a folder that cannot be listed ([`Error::Io`]) or
    /// holds no class folder; an image that cannot be read or decoded
    /// ([`Error::Io`], [`Error::Format`]), or is not `W×H` without
    /// [`ImageFolder::resize`] ([`Error::Shape`]), each naming the file.
    pub fn load<T: Float, const N: usize>(
        &self,
        shape: &[usize],
    ) -> Result<(Dataset<T, N, Labels>, Classes)> {
        let (channels, height, width) = match *shape {
            [c @ (1 | 3), h, w] if c * h * w == N => (c, h, w),
            _ => {
                return Err(Error::Shape {
                    what: format!("image samples of {N} values from {}", self.root.display()),
                    expected: format!("[C, H, W] with C 1 (greyscale) or 3 (RGB) and C·H·W = {N}"),
                    found: format!("{shape:?}"),
                })
            }
        };
        let classes = self.class_folders()?;
        let (mut values, mut labels) = (Vec::new(), Vec::new());
        for (label, folder) in classes.iter().enumerate() {
            for file in image_files(&self.root.join(folder))? {
                let image = self.read(&file, width, height)?;
                push_channel_first(&image, channels, &mut values);
                labels.push(label);
            }
        }
        let features = crate::tensor::Batch::from_vec(values.into_iter().map(T::cast).collect());
        Ok((Dataset::new(features, labels)?, Classes::new(classes)))
    }

    /// The class folders' names, sorted.
    fn class_folders(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.path().is_dir() {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Err(Error::format(&self.root, "no class folders: images go in root/<class>/*.png|jpg"));
        }
        names.sort();
        Ok(names)
    }

    /// Decodes one image at `width × height`, resized or checked.
    fn read(&self, path: &Path, width: usize, height: usize) -> Result<DynamicImage> {
        let bytes = crate::fs::read_regular(path, "an image")?;
        let bad = |e: &dyn std::fmt::Display| Error::format(path, format!("not a readable image: {e}"));
        let image = ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(&e))?
            .decode()
            .map_err(|e| bad(&e))?;
        let (w, h) = (image.width() as usize, image.height() as usize);
        if (w, h) == (width, height) {
            return Ok(image);
        }
        if !self.resize {
            return Err(Error::Shape {
                what: format!("image {}", path.display()),
                expected: format!("{width}×{height} pixels (or ImageFolder::resize(true))"),
                found: format!("{w}×{h}"),
            });
        }
        let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
            return Err(bad(&"the network's input is too large to resize to"));
        };
        Ok(image.resize_exact(w, h, FilterType::Triangle))
    }
}

/// The image files in `folder`, sorted by name.
fn image_files(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))? {
        let path = entry.map_err(|e| Error::io(folder, e))?.path();
        let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        if extension.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Appends the image's pixels, scaled to [0, 1], one channel plane after another.
fn push_channel_first(image: &DynamicImage, channels: usize, values: &mut Vec<f64>) {
    let scale = |v: u8| f64::from(v) / 255.0;
    if channels == 1 {
        values.extend(image.to_luma8().as_raw().iter().copied().map(scale));
    } else {
        let rgb = image.to_rgb8();
        for c in 0..3 {
            values.extend(rgb.as_raw().chunks_exact(3).map(|px| scale(px[c])));
        }
    }
}

#[cfg(test)]
#[path = "folder_tests.rs"]
mod tests;
