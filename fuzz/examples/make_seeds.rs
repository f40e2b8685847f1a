//! Writes the seed corpora of every fuzz target into `fuzz/corpus/<target>/`:
//! valid files of each kind, small enough to commit.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds` (no fuzzing flags needed).

use staticnet::prelude::*;
use staticnet_fuzz::{tiny_dataset, FuzzCnn};
use std::path::{Path, PathBuf};

type Res = std::result::Result<(), Box<dyn std::error::Error>>;

fn put(dir: &Path, name: &str, bytes: &[u8]) -> Res {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)?;
    println!("{} ({} bytes)", dir.join(name).display(), bytes.len());
    Ok(())
}

/// The raw IDX bytes of a gzip-compressed `u8` IDX file, through the library's own reader.
fn gunzip(path: &Path) -> std::result::Result<Vec<u8>, Box<dyn std::error::Error>> {
    let array = staticnet::data::idx::read(path)?;
    let values = array.as_u8().ok_or("not u8")?;
    let mut out = Vec::new();
    out.extend_from_slice(&[0, 0, 0x08, array.dims.len() as u8]);
    for &d in &array.dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(values);
    Ok(out)
}

fn idx_header(type_code: u8, dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, type_code, dims.len() as u8];
    dims.iter().for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
    v
}

fn png(
    width: u32,
    height: u32,
    colour: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(colour);
        enc.set_depth(depth);
        if palette {
            enc.set_palette(vec![0, 0, 0, 255, 255, 255, 128, 64, 32]);
            enc.set_trns(vec![255, 0, 128]);
        }
        let mut writer = enc.write_header().expect("header");
        writer.write_image_data(data).expect("data");
    }
    out
}

fn main() -> Res {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = root.join("..");
    let corpus = root.join("corpus");

    // IDX: real MNIST labels and three images (raw), the gzip labels file, every type code.
    let dir = corpus.join("idx");
    let labels = gunzip(&repo.join("data/mnist/t10k-labels-idx1-ubyte.gz"))?;
    put(&dir, "t10k-labels-raw", &labels)?;
    put(&dir, "t10k-labels-gz", &std::fs::read(repo.join("data/mnist/t10k-labels-idx1-ubyte.gz"))?)?;
    let images = gunzip(&repo.join("data/mnist/t10k-images-idx3-ubyte.gz"))?;
    let mut three = idx_header(0x08, &[3, 28, 28]);
    three.extend_from_slice(&images[16..16 + 3 * 784]);
    put(&dir, "t10k-images-3-raw", &three)?;
    for (name, code, width) in
        [("i8", 0x09u8, 1usize), ("i16", 0x0B, 2), ("i32", 0x0C, 4), ("f32", 0x0D, 4), ("f64", 0x0E, 8)]
    {
        let mut b = idx_header(code, &[2, 3]);
        b.extend((0..6 * width).map(|i| (i * 37 % 251) as u8));
        put(&dir, name, &b)?;
    }

    // Weights: the fuzzed network in f32 and f64, and a CNN fixture of another shape.
    let dir = corpus.join("weights");
    put(&dir, "fuzzcnn-f32", &persist::to_bytes(&FuzzCnn::<f32>::new(1))?)?;
    put(&dir, "fuzzcnn-f64", &persist::to_bytes(&FuzzCnn::<f64>::init(Init::Auto, 2))?)?;
    put(
        &dir,
        "staticnet-cnn-fixture",
        &std::fs::read(repo.join("tests/fixtures/staticnet_cnn.safetensors"))?,
    )?;

    // Checkpoints: after an epoch of Adam, AdamW and SGD with momentum.
    let dir = corpus.join("checkpoint");
    let tmp = std::env::temp_dir().join(format!("make-seeds-{}.ckpt", std::process::id()));
    let data = tiny_dataset();
    let checkpoint = |name: &str, fit: &mut dyn FnMut(&mut FuzzCnn<f32>) -> Result<History>| -> Res {
        let mut net = FuzzCnn::<f32>::new(3);
        fit(&mut net)?;
        let bytes = std::fs::read(&tmp)?;
        std::fs::remove_file(&tmp)?;
        put(&dir, name, &bytes)
    };
    let mut trainer = Trainer::new(Adam::new(1e-3)).epochs(1).batch_size(2).verbose(false).checkpoint(&tmp);
    checkpoint("adam", &mut |net| trainer.fit(net, &SoftmaxCrossEntropy, &data, None))?;
    let mut trainer =
        Trainer::new(AdamW::new(1e-3, 0.01)).epochs(1).batch_size(2).verbose(false).checkpoint(&tmp);
    checkpoint("adamw", &mut |net| trainer.fit(net, &SoftmaxCrossEntropy, &data, None))?;
    let mut trainer =
        Trainer::new(Sgd::new(0.1).momentum(0.9)).epochs(1).batch_size(4).verbose(false).checkpoint(&tmp);
    checkpoint("sgd-momentum", &mut |net| trainer.fit(net, &SoftmaxCrossEntropy, &data, None))?;

    // PNG: the bundled digits and every colour type and bit depth.
    let dir = corpus.join("png");
    for entry in std::fs::read_dir(repo.join("data/samples"))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).ok_or("name")?.to_string();
        put(&dir, &name, &std::fs::read(&path)?)?;
    }
    use png::{BitDepth, ColorType};
    put(&dir, "rgb-3x2.png", &png(3, 2, ColorType::Rgb, BitDepth::Eight, &[7; 18], false))?;
    put(&dir, "rgba-2x2.png", &png(2, 2, ColorType::Rgba, BitDepth::Eight, &[200; 16], false))?;
    put(
        &dir,
        "grey-alpha-2x1.png",
        &png(2, 1, ColorType::GrayscaleAlpha, BitDepth::Eight, &[9, 99, 19, 199], false),
    )?;
    put(
        &dir,
        "grey16-2x2.png",
        &png(2, 2, ColorType::Grayscale, BitDepth::Sixteen, &[1, 2, 3, 4, 5, 6, 7, 8], false),
    )?;
    put(
        &dir,
        "grey1-9x2.png",
        &png(9, 2, ColorType::Grayscale, BitDepth::One, &[0b1010_1010, 0x80, 0x55, 0], false),
    )?;
    put(&dir, "indexed-trns-3x1.png", &png(3, 1, ColorType::Indexed, BitDepth::Eight, &[0, 1, 2], true))?;
    Ok(())
}
