use super::*;
use image::{GrayImage, Luma, Rgb, RgbImage};

/// `root/<class>/<file>` with tiny generated images:
/// - `cat/a.png`: 3×2 greyscale, pixel (x, y) = 40·(x + 3y);
/// - `cat/b.PNG`: 3×2 RGB, red 255, green 0, blue 51 everywhere;
/// - `dog/c.jpg`: 3×2 RGB, a flat grey of 128 (JPEG keeps flat colour almost exactly);
/// - `dog/notes.txt` and `.hidden/x.png`, skipped.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for class in ["cat", "dog", ".hidden"] {
        std::fs::create_dir(root.join(class)).unwrap();
    }
    GrayImage::from_fn(3, 2, |x, y| Luma([(40 * (x + 3 * y)) as u8])).save(root.join("cat/a.png")).unwrap();
    let rgb = RgbImage::from_pixel(3, 2, Rgb([255, 0, 51]));
    rgb.save_with_format(root.join("cat/b.PNG"), image::ImageFormat::Png).unwrap();
    RgbImage::from_pixel(3, 2, Rgb([128, 128, 128])).save(root.join("dog/c.jpg")).unwrap();
    std::fs::write(root.join("dog/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join(".hidden/x.png"), "not an image").unwrap();
    std::fs::write(root.join("README"), "files at the root are skipped").unwrap();
    dir
}

#[test]
fn greyscale_samples_with_sorted_classes() {
    let dir = folder();
    let (data, classes) = ImageFolder::new(dir.path()).load::<f32, 6>(&[1, 2, 3]).unwrap();
    assert_eq!(classes.names(), &["cat", "dog"]);
    assert_eq!(data.targets(), &vec![0, 0, 1]);
    let first: Vec<f32> = (0..6).map(|i| (40 * i) as f32 / 255.0).collect();
    assert_eq!(data.features().column(0).as_slice(), &first[..]);
    // Luma of (255, 0, 51): 0.2126·255 + 0.7152·0 + 0.0722·51 ≈ 58 (the image crate's weights).
    let red = data.features().column(1)[0] * 255.0;
    assert!((red - 58.0).abs() <= 1.0, "{red}");
    let grey = data.features().column(2);
    assert!(grey.iter().all(|&v| (v * 255.0 - 128.0).abs() <= 2.0), "{grey:?}");
}

#[test]
fn rgb_samples_are_channel_first() {
    let dir = folder();
    let (data, _) = ImageFolder::new(dir.path()).load::<f64, 18>(&[3, 2, 3]).unwrap();
    let red = data.features().column(1);
    // Six red values, then six green, then six blue.
    assert!(red.as_slice()[..6].iter().all(|&v| v == 1.0));
    assert!(red.as_slice()[6..12].iter().all(|&v| v == 0.0));
    assert!(red.as_slice()[12..].iter().all(|&v| v == 51.0 / 255.0));
    // A greyscale image in RGB: the same plane three times.
    let grey = data.features().column(0);
    assert_eq!(grey.as_slice()[..6], grey.as_slice()[12..]);
    assert_eq!(grey[5], 200.0 / 255.0);
}

#[test]
fn sizes_are_checked_or_resized() {
    let dir = folder();
    let err = ImageFolder::new(dir.path()).load::<f32, 4>(&[1, 2, 2]).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { what, found, .. } if what.ends_with("a.png") && found == "3×2"),
        "{err}"
    );
    let (data, _) = ImageFolder::new(dir.path()).resize(true).load::<f32, 16>(&[1, 4, 4]).unwrap();
    assert_eq!(data.len(), 3);
    // A flat image stays flat when resized.
    assert!(data.features().column(2).iter().all(|&v| (v * 255.0 - 128.0).abs() <= 2.0));
    for shape in [&[6][..], &[2, 1, 3], &[1, 3, 3]] {
        let err = ImageFolder::new(dir.path()).load::<f32, 6>(shape).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{shape:?}: {err}");
    }
}

#[test]
fn unreadable_files_and_folders_are_named() {
    let dir = folder();
    std::fs::write(dir.path().join("dog/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let err = ImageFolder::new(dir.path()).load::<f32, 6>(&[1, 2, 3]).unwrap_err();
    assert!(matches!(&err, Error::Format { path, .. } if path.ends_with("dog/broken.png")), "{err}");
    assert!(err.to_string().contains("broken.png: not a readable image"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = ImageFolder::new(empty.path()).load::<f32, 6>(&[1, 2, 3]).unwrap_err();
    assert!(err.to_string().contains("no class folders"), "{err}");
    let err = ImageFolder::new(dir.path().join("missing")).load::<f32, 6>(&[1, 2, 3]).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}
