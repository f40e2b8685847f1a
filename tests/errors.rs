//! Every error a user can meet (see ERRORS.md), each triggered through the
//! public API with its message checked, and the regression tests for hostile
//! files: sizes declared larger than the data are refused before allocating.

use staticnet::data::{idx, image};
use staticnet::prelude::*;
use staticnet::NonFiniteAt;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------
// The largest single allocation, per thread (tests run in parallel threads).

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the slot may be gone while the thread shuts down.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: forwards to the system allocator; only records sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, passed on unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the largest allocation it made on this thread.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    let r = f();
    (r, LARGEST.with(Cell::get))
}

/// What a refused hostile file may allocate at most: small buffers, never its declared size.
const SMALL: usize = 64 * 1024;

// ---------------------------------------------------------------------------
// Fixtures

network! {
    struct Mlp { input: [4], fc1: dense(8), relu, head: dense(3) }
}

network! {
    struct Other { input: [4], fc1: dense(5), relu, out: dense(3) }
}

network! {
    /// A language model over 4 token ids of a 6-token vocabulary.
    struct TokenLm { input: tokens[4], embed: embedding(6 -> 8), rnn: lstm(8), head: dense(6) }
}

/// A fresh directory, unique per call (tests run in parallel).
fn scratch(name: &str) -> PathBuf {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("staticnet-errors-{name}-{}-{k}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn data(labels: Vec<usize>) -> Dataset<f32, 4, Labels> {
    let n = labels.len();
    Dataset::new(Batch::<f32, 4>::from_fn(n, |r, c| (r + c) as f32 / 10.0), labels).unwrap()
}

fn quiet<O>(optimizer: O) -> Trainer<O> {
    Trainer::new(optimizer).epochs(1).batch_size(4).verbose(false)
}

/// A safetensors file: `header` (JSON) after its little-endian length, then `data`.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn idx_header(type_code: u8, dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, type_code, dims.len() as u8];
    dims.iter().for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
    v
}

/// A PNG of one RGBA pixel whose header declares `width`×`height` pixels.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8 bits, RGBA, deflate, no filter method, not interlaced
    chunk(&mut out, b"IHDR", &ihdr);
    // One scanline: filter byte 0, then the pixel; zlib with one stored block.
    let raw = [0u8, 1, 2, 3, 4];
    let mut zlib = vec![0x78, 0x01];
    zlib.extend_from_slice(&stored_deflate(&raw));
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// One final stored (uncompressed) deflate block.
fn stored_deflate(bytes: &[u8]) -> Vec<u8> {
    let len = bytes.len() as u16;
    let mut out = vec![1];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// CRC-32 (ISO-HDLC), as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

// ---------------------------------------------------------------------------
// Error::Io

#[test]
fn io_a_file_that_cannot_be_read_or_written() {
    let dir = scratch("io");
    let missing = dir.join("missing.safetensors");
    let err = Mlp::<f32>::load(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert_eq!(err.to_string(), format!("{}: No such file or directory (os error 2)", missing.display()));

    let Err(err) = mnist::load::<f32>(&dir) else { panic!("an empty directory loaded") };
    assert_eq!(
        err.to_string(),
        format!("{}: neither this file nor its .gz was found", dir.join("train-images-idx3-ubyte").display())
    );

    // A directory is neither read nor written over.
    let err = Mlp::new(0).save(&dir).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().starts_with(&dir.display().to_string()),
        "{err}"
    );
    let err = persist::load_into(&mut Mlp::new(0), &dir).unwrap_err();
    assert_eq!(err.to_string(), format!("{}: is a directory, not a safetensors file", dir.display()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `f` on a thread and waits at most a second for its result, so a call
/// that blocks fails the test instead of hanging it.
fn within_a_second<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(1))
        .expect("the call blocked instead of returning an error")
}

/// Every reader of the library, on `path`, each on its own thread within a second: the messages.
fn every_reader(path: &Path) -> [String; 4] {
    let [a, b, c, d] = [0, 1, 2, 3].map(|k| {
        let path = path.to_path_buf();
        within_a_second(move || {
            let err = match k {
                0 => Mlp::<f32>::load(&path).map(drop),
                1 => quiet(Sgd::new(0.1)).resume(&mut Mlp::<f32>::new(0), &path),
                2 => idx::read(&path).map(drop),
                _ => image::read_png(&path).map(drop),
            }
            .unwrap_err();
            assert!(matches!(err, Error::Io { .. }), "{err}");
            err.to_string()
        })
    });
    [a, b, c, d]
}

#[cfg(unix)]
#[test]
fn io_a_fifo_socket_or_device_is_refused_at_once() {
    let dir = scratch("special");
    let fifo = dir.join("p");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success(), "mkfifo failed");
    let p = fifo.display();
    assert_eq!(
        every_reader(&fifo),
        [
            format!("{p}: is a FIFO (named pipe), not a safetensors file"),
            format!("{p}: is a FIFO (named pipe), not a safetensors file"),
            format!("{p}: is a FIFO (named pipe), not an IDX file"),
            format!("{p}: is a FIFO (named pipe), not a PNG image"),
        ]
    );
    // A symbolic link is followed: a link to the FIFO is refused the same way.
    let link = dir.join("link");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    assert!(every_reader(&link).iter().all(|m| m.contains("is a FIFO (named pipe)")));

    let socket = dir.join("s");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let s = socket.display();
    assert_eq!(every_reader(&socket)[2], format!("{s}: is a socket, not an IDX file"));

    // Writers replace the FIFO with a regular file (atomically), without blocking either.
    let q = dir.join("q");
    assert!(std::process::Command::new("mkfifo").arg(&q).status().unwrap().success());
    let target = q.clone();
    within_a_second(move || idx::write_u8(&target, &[1], &[7])).unwrap();
    assert_eq!(idx::read(&q).unwrap().as_u8(), Some(&[7u8][..]));

    let device = Path::new("/dev/null");
    assert_eq!(every_reader(device)[3], "/dev/null: is a character device, not a PNG image");
    assert_eq!(every_reader(&dir)[2], format!("{}: is a directory, not an IDX file", dir.display()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn io_an_empty_path_is_named_in_the_message() {
    let err = Mlp::<f32>::new(0).save("").unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert_eq!(err.to_string(), "\"\" (empty path): the path does not name a file");
    let err = Mlp::<f32>::load("").unwrap_err();
    assert_eq!(err.to_string(), "\"\" (empty path): No such file or directory (os error 2)");
    // The shape messages of IDX and MNIST name an empty path the same way.
    let err = idx::write_u8("", &[2], &[1]).unwrap_err();
    assert_eq!(err.to_string(), "IDX data for \"\" (empty path): expected [2] = 2 values, found 1 values");
    let array = idx::IdxArray { dims: vec![1, 2, 2], data: idx::IdxData::U8(vec![0; 4]) };
    let err = mnist::images_from_idx::<f32>(&array, Path::new("")).unwrap_err();
    assert!(err.to_string().starts_with("images in \"\" (empty path): expected"), "{err}");
    let array = idx::IdxArray { dims: vec![1, 1], data: idx::IdxData::U8(vec![0]) };
    let err = mnist::labels_from_idx(&array, Path::new("")).unwrap_err();
    assert!(err.to_string().starts_with("labels in \"\" (empty path): expected"), "{err}");
    let image = image::GreyImage { width: 1, height: 1, pixels: vec![0] };
    let err = mnist::sample_from_image::<f32>(&image, Path::new("")).unwrap_err();
    assert!(err.to_string().starts_with("digit image \"\" (empty path): expected"), "{err}");
}

// ---------------------------------------------------------------------------
// Error::Format

#[test]
fn format_idx_files_that_are_not_idx() {
    let err = idx::parse(&[1, 0, 8, 1], "bad.idx").unwrap_err();
    assert!(matches!(err, Error::Format { .. }));
    assert_eq!(
        err.to_string(),
        "bad.idx: not a valid IDX file: the magic number must start with two zero bytes, found 01 00"
    );
    let err = idx::parse(&[0, 0], "short.idx").unwrap_err();
    assert_eq!(err.to_string(), "short.idx: not a valid IDX file: it ends before the 4-byte magic number");
    let err = idx::parse(&[0, 0, 0x42, 1], "type.idx").unwrap_err();
    assert_eq!(err.to_string(), "type.idx: not a valid IDX file: unknown type code 0x42");
}

#[test]
fn format_an_idx_header_claiming_a_billion_images_is_refused_before_allocating() {
    let mut bytes = idx_header(0x08, &[1_000_000_000, 28, 28]);
    bytes.extend_from_slice(&[0; 16]);
    let (result, largest) = largest_allocation(|| idx::parse(&bytes, "huge.idx"));
    assert_eq!(
        result.unwrap_err().to_string(),
        "huge.idx: not a valid IDX file: the header declares [1000000000, 28, 28] (784000000000 bytes of data) \
         but only 16 bytes follow"
    );
    assert!(largest < SMALL, "allocated {largest} bytes");
    // Dimensions whose product overflows.
    let err = idx::parse(&idx_header(0x0E, &[u32::MAX, u32::MAX, u32::MAX]), "overflow.idx").unwrap_err();
    assert!(err.to_string().ends_with("overflow"), "{err}");
    // The same through a gzip file on disk.
    let dir = scratch("idx-gz");
    let path = dir.join("huge.idx.gz");
    std::fs::write(&path, gzip_stored(&bytes)).unwrap();
    let (result, largest) = largest_allocation(|| idx::read(&path));
    assert!(result.unwrap_err().to_string().contains("but only 16 bytes follow"));
    assert!(largest < SMALL, "allocated {largest} bytes");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A gzip member holding `bytes` in one stored deflate block.
fn gzip_stored(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&stored_deflate(bytes));
    out.extend_from_slice(&crc32(bytes).to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out
}

#[test]
fn format_safetensors_files_that_are_damaged() {
    let mut net = Mlp::new(0);
    let err = persist::load_from_bytes(&mut net, &[]).unwrap_err();
    assert!(matches!(err, Error::Format { .. }));
    assert_eq!(err.to_string(), "<memory>: the file is empty: not a safetensors file");
    let err = persist::load_from_bytes(&mut net, b"abc").unwrap_err();
    assert_eq!(
        err.to_string(),
        "<memory>: 3 bytes is too short for a safetensors file, which starts with an 8-byte header length"
    );
    let err = persist::load_from_bytes(&mut net, &safetensors("{not json", &[])).unwrap_err();
    assert!(err.to_string().starts_with("<memory>: not a valid safetensors file: "), "{err}");
    // A checkpoint loader given a weights file.
    let weights = persist::to_bytes(&net).unwrap();
    let err = persist::load_checkpoint_from_bytes(&mut net, &weights).unwrap_err();
    assert_eq!(
        err.to_string(),
        "<memory>: not a staticnet checkpoint (no `staticnet.kind` = `checkpoint` metadata); load weights files \
         with load_into"
    );
}

#[test]
fn format_safetensors_headers_claiming_huge_sizes_are_refused_before_allocating() {
    let mut net = Mlp::new(0);
    let before = persist::to_bytes(&net).unwrap();
    // A header length of 2^64 − 1 bytes.
    let mut bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let (result, largest) = largest_allocation(|| persist::load_from_bytes(&mut net, &bytes));
    assert_eq!(
        result.unwrap_err().to_string(),
        "<memory>: the header length is 18446744073709551615 bytes but only 2 bytes follow: the file is truncated \
         or not safetensors"
    );
    assert!(largest < SMALL, "allocated {largest} bytes");
    // A tensor of 2^62 × 4 elements (a 64 EiB tensor) backed by 8 bytes.
    let header = r#"{"fc1.weight":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#;
    let bytes = safetensors(header, &[0; 8]);
    let (result, largest) = largest_allocation(|| persist::load_from_bytes(&mut net, &bytes));
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    assert!(err.to_string().starts_with("<memory>: not a valid safetensors file: "), "{err}");
    assert!(largest < SMALL, "allocated {largest} bytes");
    // A billion floats claimed, offsets beyond the data.
    let header = r#"{"fc1.weight":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}"#;
    let bytes = safetensors(header, &[]);
    let (result, largest) = largest_allocation(|| persist::load_from_bytes(&mut net, &bytes));
    assert!(matches!(result, Err(Error::Format { .. })));
    assert!(largest < SMALL, "allocated {largest} bytes");
    // The same for checkpoints; and nothing was loaded.
    let (result, largest) = largest_allocation(|| persist::load_checkpoint_from_bytes(&mut net, &bytes));
    assert!(matches!(result, Err(Error::Format { .. })));
    assert!(largest < SMALL, "allocated {largest} bytes");
    assert_eq!(persist::to_bytes(&net).unwrap(), before);
}

/// A checkpoint of `Mlp` after one epoch of Adam, and the network.
fn checkpoint() -> (Mlp, Vec<u8>) {
    let dir = scratch("checkpoint");
    let path = dir.join("run.ckpt");
    let mut net = Mlp::new(1);
    quiet(Adam::new(1e-3))
        .checkpoint(&path)
        .fit(&mut net, &SoftmaxCrossEntropy, &data(vec![0, 1, 2, 0]), None)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (net, bytes)
}

/// `bytes` with the JSON text `from` in the header replaced by `to` (same length or not).
fn patch_header(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    assert!(header.contains(from), "{header}");
    safetensors(&header.replace(from, to), &bytes[8 + n..])
}

#[test]
fn format_checkpoint_counts_beyond_2_pow_53_are_refused() {
    let (_, bytes) = checkpoint();
    let hostile =
        patch_header(&bytes, r#""optimizer.step":"1""#, r#""optimizer.step":"18446744073709551615""#);
    let mut net = Mlp::new(2);
    let mut trainer = quiet(Adam::new(1e-3));
    let err = trainer.resume_from_bytes(&mut net, &hostile).unwrap_err();
    assert_eq!(
        err.to_string(),
        "<memory>: checkpoint metadata `optimizer.step` = \"18446744073709551615\" is out of range: counts are at \
         most 2^53"
    );
    let hostile = patch_header(&bytes, r#""epoch":"1""#, r#""epoch":"9007199254740993""#);
    let err = persist::load_checkpoint_from_bytes(&mut net, &hostile).unwrap_err();
    assert!(err.to_string().contains("`epoch` = \"9007199254740993\" is out of range"), "{err}");
    // The largest allowed counts resume and train without overflowing.
    let edge = patch_header(&bytes, r#""step":"1""#, r#""step":"9007199254740992""#);
    let edge = patch_header(&edge, r#""optimizer.step":"1""#, r#""optimizer.step":"9007199254740992""#);
    let mut trainer = quiet(Adam::new(1e-3)).epochs(2);
    trainer.resume_from_bytes(&mut net, &edge).unwrap();
    trainer.fit(&mut net, &SoftmaxCrossEntropy, &data(vec![0, 1, 2, 0]), None).unwrap();
    assert_eq!(trainer.steps(), 9007199254740993);
}

#[test]
fn format_png_files_that_are_damaged_or_declare_more_than_they_hold() {
    let err = image::decode_png(b"GIF89a", "x.gif").unwrap_err();
    assert!(matches!(err, Error::Format { .. }));
    assert!(err.to_string().starts_with("x.gif: not a readable PNG image: "), "{err}");
    let bytes = png_declaring(8192, 8192);
    let (result, largest) = largest_allocation(|| image::decode_png(&bytes, "bomb.png"));
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "bomb.png: not a readable PNG image: the header declares 8192×8192 pixels (268443648 bytes of image \
             data) but the file's {} bytes cannot hold them",
            bytes.len()
        )
    );
    // The decoder's own buffers (its inflate window, 128 KiB), never the 256 MiB declared.
    assert!(largest <= 2 * SMALL, "allocated {largest} bytes");
    let err = image::decode_png(&png_declaring(1 << 20, 1 << 20), "huge.png").unwrap_err();
    assert_eq!(
        err.to_string(),
        "huge.png: not a readable PNG image: 1048576×1048576 pixels is more than this reader accepts"
    );
    assert!(image::decode_png(&png_declaring(1, 1), "ok.png").is_ok());
}

// ---------------------------------------------------------------------------
// Error::Shape

#[test]
fn shape_data_of_the_wrong_size() {
    let big = image::GreyImage { width: 32, height: 32, pixels: vec![0; 1024] };
    let err = mnist::sample_from_image::<f32>(&big, Path::new("big.png")).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }));
    assert_eq!(err.to_string(), "digit image big.png: expected 28×28 pixels, like MNIST, found 32×32 pixels");
    let short = image::GreyImage { width: 28, height: 28, pixels: vec![0; 10] };
    let err = mnist::sample_from_image::<f32>(&short, Path::new("short.png")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "digit image short.png: expected 28×28 pixels, like MNIST, found 10 pixel values for 28×28"
    );
    let array = idx::IdxArray { dims: vec![2, 32, 32], data: idx::IdxData::U8(vec![0; 2048]) };
    let err = mnist::images_from_idx::<f32>(&array, Path::new("x.idx")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "images in x.idx: expected u8 values of shape [n, 28, 28], found u8 values of shape [2, 32, 32]"
    );
    // `IdxArray` is plain data: dimensions that do not match the values are refused, not a panic.
    let array = idx::IdxArray { dims: vec![5, 28, 28], data: idx::IdxData::U8(vec![0; 784]) };
    let err = mnist::images_from_idx::<f32>(&array, Path::new("y.idx")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "images in y.idx: expected u8 values of shape [n, 28, 28], found 784 u8 values for shape [5, 28, 28]"
    );
    // Dimensions whose product overflows are refused, not a multiply overflow.
    let dir = scratch("shape");
    let path = dir.join("huge.idx");
    let err = idx::write_u8(&path, &[1 << 32, 1 << 32, 1 << 32], &[]).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "IDX data for {}: expected [4294967296, 4294967296, 4294967296] = more values than fit in memory, \
             found 0 values",
            path.display()
        )
    );
    assert!(!path.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// Error::LabelOutOfRange

#[test]
fn label_out_of_range() {
    let mut net = Mlp::new(0);
    let err = quiet(Sgd::new(0.1)).fit(&mut net, &SoftmaxCrossEntropy, &data(vec![0, 7]), None).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { label: 7, sample: 1, classes: 3 }));
    assert_eq!(err.to_string(), "label 7 of sample 1 is out of range: the network has 3 classes");
    let labels = idx::IdxArray { dims: vec![3], data: idx::IdxData::U8(vec![1, 12, 3]) };
    let err = mnist::labels_from_idx(&labels, Path::new("l.idx")).unwrap_err();
    assert_eq!(err.to_string(), "label 12 of sample 1 is out of range: the network has 10 classes");
}

// ---------------------------------------------------------------------------
// Error::TokenOutOfRange, Error::StepLabelOutOfRange, Error::UnknownCharacter

/// Two windows of 4 token ids with their next-token targets.
fn token_data(ids: [f32; 8], targets: StepLabels<4>) -> Dataset<f32, 4, StepLabels<4>> {
    Dataset::new(Batch::from_column_slice(&ids), targets).unwrap()
}

#[test]
fn token_out_of_range() {
    let mut net = TokenLm::new(0);
    let loss = SequenceCrossEntropy::<4, 6>;
    let good = vec![[1, 2, 3, 4], [5, 0, 1, 2]];
    let bad = token_data([0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 0.0, 1.0], good.clone());
    let before = net.clone();
    let err = quiet(Sgd::new(0.1)).fit(&mut net, &loss, &bad, None).unwrap_err();
    assert!(matches!(err, Error::TokenOutOfRange { sample: 1, step: 1, vocab: 6, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "token id 6 of sample 1 at step 1 is not in the vocabulary: ids are whole numbers below 6"
    );
    assert_eq!(staticnet::persist::to_bytes(&net).unwrap(), staticnet::persist::to_bytes(&before).unwrap());
    let fractional = token_data([0.0, 1.5, 2.0, 3.0, 4.0, 5.0, 0.0, 1.0], good);
    let err = evaluate(&net, &loss, &fractional, 8).unwrap_err();
    assert_eq!(
        err.to_string(),
        "token id 1.5 of sample 0 at step 1 is not in the vocabulary: ids are whole numbers below 6"
    );
}

#[test]
fn step_label_out_of_range() {
    let data = token_data([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 1.0], vec![[1, 2, 3, 4], [5, 0, 9, 2]]);
    let err = quiet(Sgd::new(0.1))
        .fit(&mut TokenLm::new(0), &SequenceCrossEntropy::<4, 6>, &data, None)
        .unwrap_err();
    assert!(
        matches!(err, Error::StepLabelOutOfRange { label: 9, sample: 1, step: 2, classes: 6 }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "label 9 of sample 1 at step 2 is out of range: the network has 6 classes");
}

#[test]
fn unknown_character() {
    let vocab = staticnet::data::text::CharVocab::from_text("in the beginning\n");
    let err = vocab.encode("the\nearth").unwrap_err();
    assert!(matches!(err, Error::UnknownCharacter { character: 'a', line: 2, column: 2 }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "character 'a' at line 2, column 2 is not in the vocabulary (the characters of the training text)"
    );
}

// ---------------------------------------------------------------------------
// Error::LengthMismatch

#[test]
fn length_mismatch() {
    let err = Dataset::new(Batch::<f32, 4>::zeros(3), vec![0usize, 1]).unwrap_err();
    assert!(matches!(err, Error::LengthMismatch { left: 3, right: 2, .. }));
    assert_eq!(err.to_string(), "dataset features vs targets: 3 vs 2 samples");
    let err = SoftmaxCrossEntropy.loss(&Batch::<f32, 3>::zeros(2), &vec![0]).unwrap_err();
    assert_eq!(err.to_string(), "softmax cross-entropy: outputs vs targets: 2 vs 1 samples");
}

// ---------------------------------------------------------------------------
// Error::NonFinite

#[test]
fn non_finite_in_the_input_a_layer_the_loss_or_a_gradient() {
    let mut x = Batch::<f32, 4>::from_element(4, 0.5);
    x[(2, 3)] = f32::INFINITY;
    let bad = Dataset::new(x, vec![0, 1, 2, 0]).unwrap();
    let mut net = Mlp::new(0);
    let err =
        quiet(Sgd::new(0.1)).check_finite(true).fit(&mut net, &SoftmaxCrossEntropy, &bad, None).unwrap_err();
    assert!(matches!(
        err,
        Error::NonFinite { epoch: 1, batch: 0, at: NonFiniteAt::Input { sample: 3, feature: 2 }, .. }
    ));
    assert_eq!(
        err.to_string(),
        "the input holds inf (training sample 3, feature 2) at epoch 1, batch 0: check the data for NaN/Inf"
    );
    let err =
        quiet(Sgd::new(0.1)).check_finite(false).fit(&mut net, &SoftmaxCrossEntropy, &bad, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the loss became NaN at epoch 1, batch 0: lower the learning rate or check the data for NaN/Inf"
    );
    // A learning rate that blows up the weights: a layer's output is the first to overflow.
    let mut net = Mlp::new(0);
    let err = Trainer::new(Sgd::new(1e38))
        .epochs(5)
        .batch_size(1)
        .verbose(false)
        .check_finite(true)
        .fit(&mut net, &SoftmaxCrossEntropy, &data(vec![0, 1, 2, 0]), None)
        .unwrap_err();
    match &err {
        Error::NonFinite {
            at: NonFiniteAt::Layer { name, .. } | NonFiniteAt::Gradient { name, .. }, ..
        } => {
            assert!(
                ["fc1", "relu_1", "head", "fc1.weight", "fc1.bias", "head.weight", "head.bias"]
                    .contains(&name.as_str()),
                "{err}"
            )
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains("lower the learning rate, clip gradients (Trainer::clip_grad_norm)"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Error::InvalidConfig

#[test]
fn invalid_settings() {
    let mut net = Mlp::new(0);
    let ok = data(vec![0, 1, 2, 0]);
    let message = |r: Result<History>| r.unwrap_err().to_string();
    assert_eq!(
        message(quiet(Sgd::new(0.1)).batch_size(0).fit(&mut net, &SoftmaxCrossEntropy, &ok, None)),
        "invalid setting: batch size must be at least 1"
    );
    assert_eq!(
        message(quiet(Sgd::new(0.1)).clip_grad_norm(0.0).fit(&mut net, &SoftmaxCrossEntropy, &ok, None)),
        "invalid setting: clip_grad_norm must be positive, got 0"
    );
    assert_eq!(
        message(quiet(Sgd::new(0.1)).clip_grad_value(-2.0).fit(&mut net, &SoftmaxCrossEntropy, &ok, None)),
        "invalid setting: clip_grad_value must be positive, got -2"
    );
    assert_eq!(
        message(quiet(Sgd::new(-1.0)).fit(&mut net, &SoftmaxCrossEntropy, &ok, None)),
        "invalid setting: learning rate must be finite and non-negative, got -1"
    );
    let err = evaluate(&net, &SoftmaxCrossEntropy, &ok, 0).unwrap_err();
    assert_eq!(err.to_string(), "invalid setting: batch size must be at least 1");
    let bce = Batch::<f32, 3>::from_column_slice(&[0.0, 1.5, 0.0]);
    let err = Loss::<f32, 3>::validate(&BinaryCrossEntropy, &bce).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid setting: binary cross-entropy target 1.5 at element 1 is outside [0, 1]"
    );
    assert_eq!(
        ok.select(&[0, 4]).unwrap_err().to_string(),
        "invalid setting: sample index 4 is out of range for 4 samples"
    );
    assert_eq!(
        History::default().plot_svg(std::env::temp_dir().join("never.svg")).unwrap_err().to_string(),
        "invalid setting: nothing to plot: the history has no epochs"
    );
    // A checkpoint resumed with another optimizer: nothing changes.
    let (_, bytes) = checkpoint();
    let mut fresh = Mlp::new(5);
    let before = persist::to_bytes(&fresh).unwrap();
    let mut sgd = quiet(Sgd::new(0.1));
    let err = sgd.resume_from_bytes(&mut fresh, &bytes).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)));
    assert_eq!(
        err.to_string(),
        "invalid setting: cannot restore adam optimizer state into sgd: resume with the optimizer the checkpoint \
         was made with"
    );
    assert_eq!(persist::to_bytes(&fresh).unwrap(), before);
    // Layers built by hand rather than by network!.
    use staticnet::layers::{BatchNorm, Dropout, LayerNorm};
    assert_eq!(
        Dropout::new(1.0, 0).unwrap_err().to_string(),
        "invalid setting: Dropout: p must lie in [0, 1), got 1"
    );
    assert_eq!(
        BatchNorm::<f32, 4, 4>::new(1e-5, 2.0).unwrap_err().to_string(),
        "invalid setting: BatchNorm: momentum must lie in [0, 1], got 2"
    );
    assert_eq!(
        LayerNorm::<f32, 4>::new(&[2, 3], 1e-5).unwrap_err().to_string(),
        "invalid setting: LayerNorm: shape [2, 3] does not hold 4 features"
    );
}

// ---------------------------------------------------------------------------
// Error::Mismatch and every TensorProblem

#[test]
fn mismatch_lists_every_tensor_that_does_not_fit() {
    let bytes = persist::to_bytes(&Mlp::new(0)).unwrap();
    let mut other = Other::new(0);
    let before = persist::to_bytes(&other).unwrap();
    let err = persist::load_from_bytes(&mut other, &bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "<memory>: the stored tensors do not fit the network (6 problems):\n  \
         - `fc1.weight` has shape [8, 4], expected [5, 4]\n  \
         - `fc1.bias` has shape [8], expected [5]\n  \
         - missing tensor `out.weight`: expected F32 [3, 5]\n  \
         - missing tensor `out.bias`: expected F32 [3]\n  \
         - unexpected tensor `head.bias` (F32 [3]): the network has no such parameter\n  \
         - unexpected tensor `head.weight` (F32 [3, 8]): the network has no such parameter"
    );
    let Error::Mismatch { problems, .. } = err else { panic!() };
    assert_eq!(
        problems[0],
        TensorProblem::WrongShape { name: "fc1.weight".into(), expected: vec![5, 4], found: vec![8, 4] }
    );
    assert!(matches!(&problems[2], TensorProblem::Missing { name, .. } if name == "out.weight"));
    assert!(matches!(&problems[4], TensorProblem::Unexpected { name, .. } if name == "head.bias"));
    assert_eq!(persist::to_bytes(&other).unwrap(), before, "nothing was loaded");
    // An f32 file loads into an f64 network (converted); an integer dtype does not.
    let mut wide = Mlp::<f64>::init(Init::Auto, 0);
    persist::load_from_bytes(&mut wide, &bytes).unwrap();
    let n = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..n]).unwrap().replace("\"F32\"", "\"I32\"");
    let ints = [&bytes[..8], header.as_bytes(), &bytes[n..]].concat();
    assert_eq!(ints.len(), bytes.len(), "the header keeps its length");
    let err = persist::load_from_bytes(&mut wide, &ints).unwrap_err();
    let Error::Mismatch { problems, .. } = &err else { panic!("{err}") };
    assert_eq!(problems.len(), 4);
    assert_eq!(
        problems[0],
        TensorProblem::WrongDtype { name: "fc1.weight".into(), expected: "F64".into(), found: "I32".into() }
    );
    assert!(err.to_string().contains("- `fc1.weight` has dtype I32, expected F64"), "{err}");
}

// ---------------------------------------------------------------------------
// Error::OnnxExport

#[test]
fn onnx_export_refuses_weights_beyond_f32_and_writes_nothing() {
    let mut net = Mlp::<f64>::init(Init::Auto, 0);
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        if p.name.to_string() == "head.weight" {
            p.value[1] = 1e300;
        }
    });
    let path = scratch("onnx").join("mlp.onnx");
    let err = net.save_onnx(&path).unwrap_err();
    assert!(matches!(&err, Error::OnnxExport { layer, .. } if layer == "head"), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot export `head` to ONNX: `weight` holds 1e300, beyond the range of f32"
    );
    assert!(!path.exists(), "nothing is written");
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| p.value.iter_mut().for_each(|v| *v = v.clamp(-1.0, 1.0)));
    assert!(net.save_onnx(&path).is_ok(), "an f64 network within f32's range exports");
}
