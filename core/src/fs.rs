//! Opening files for reading: regular files only, refused at once otherwise.
//!
//! Opening a FIFO waits for a writer, and reading a device may never end, so
//! every reader of the library (weights, checkpoints, IDX, PNG) opens through
//! [`open_regular`]: the type is checked before opening (following symlinks),
//! the file is opened non-blocking on Unix, and the type is checked again on
//! the opened handle, so a path swapped between the check and the open is
//! refused too.

use crate::error::{Error, Result};
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

/// `O_NONBLOCK` where its value is known without `libc` (not a dependency of
/// core): opening a FIFO then returns at once instead of waiting for a writer.
/// Elsewhere it is 0, and the check before opening is the only guard.
#[cfg(unix)]
fn o_nonblock() -> i32 {
    if cfg!(all(
        any(target_os = "linux", target_os = "android"),
        any(
            target_arch = "x86",
            target_arch = "x86_64",
            target_arch = "arm",
            target_arch = "aarch64",
            target_arch = "riscv64",
            target_arch = "powerpc64",
            target_arch = "s390x"
        )
    )) {
        0o4000
    } else if cfg!(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )) {
        0x0004
    } else {
        0
    }
}

/// Opens `path` for reading if it is a regular file; anything else (a
/// directory, FIFO, socket or device) is an [`Error::Io`] naming the path and
/// what it is, returned without waiting. `what` names the expected content in
/// the message (e.g. `"a safetensors file"`).
pub(crate) fn open_regular(path: &Path, what: &str) -> Result<File> {
    let io = |e: std::io::Error| Error::io(path, e);
    // Before opening: opening a FIFO could block.
    check_regular(path, &std::fs::metadata(path).map_err(io)?, what)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(o_nonblock());
    }
    let file = options.open(path).map_err(io)?;
    // After opening: the path may have been replaced in between. On a regular
    // file `O_NONBLOCK` changes nothing, so the handle is left as opened.
    check_regular(path, &file.metadata().map_err(io)?, what)?;
    Ok(file)
}

/// Reads the whole regular file at `path` (see [`open_regular`]), allocating
/// no more than its size.
pub(crate) fn read_regular(path: &Path, what: &str) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::io(path, e);
    let file = open_regular(path, what)?;
    let len = file.metadata().map_err(io)?.len();
    let too_large =
        || Error::format(path, format!("the file is too large to load into memory ({len} bytes)"));
    let capacity = usize::try_from(len).map_err(|_| too_large())?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(capacity).map_err(|_| too_large())?;
    // One byte more than announced, to notice a file that grew while being read.
    file.take(len.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 != len {
        return Err(Error::format(path, "the file changed size while being read"));
    }
    Ok(bytes)
}

/// `Ok` for a regular file, else the error saying what `path` is instead.
fn check_regular(path: &Path, meta: &Metadata, what: &str) -> Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    let kind = file_kind(meta);
    Err(Error::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("is {kind}, not {what}")),
    ))
}

/// What a non-regular file is, in words: `a directory`, `a FIFO (named pipe)`…
fn file_kind(meta: &Metadata) -> &'static str {
    if meta.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    "a special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_and_a_link_to_it_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(read_regular(&file, "a test file").unwrap(), b"abc");
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert_eq!(read_regular(&link, "a test file").unwrap(), b"abc");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(open_regular(&path, "a test file").map(drop).map_err(|e| e.to_string()));
        });
        let result = rx.recv_timeout(std::time::Duration::from_secs(1)).expect("opening the FIFO blocked");
        assert_eq!(result, Err(format!("{}: is a FIFO (named pipe), not a test file", fifo.display())));
    }

    #[cfg(unix)]
    #[test]
    fn the_open_is_non_blocking_so_a_fifo_swapped_in_after_the_check_is_refused_too() {
        // The second check, on the opened handle: what `open_regular` does after a race.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new().read(true).custom_flags(o_nonblock()).open(&fifo).unwrap();
        let err = check_regular(&fifo, &file.metadata().unwrap(), "a test file").unwrap_err();
        assert!(err.to_string().ends_with("is a FIFO (named pipe), not a test file"), "{err}");
    }
}
