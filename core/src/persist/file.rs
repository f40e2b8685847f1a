//! Files: the atomic write and the bounded whole-file read.

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// flushed and `fsync`ed, renamed over `path`, then the directory `fsync`ed
/// (on Unix). Readers see the old file or the new one, never a partial one;
/// a killed process leaves at most a stray `.<file name>.<random>.tmp` behind.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let io = |e: std::io::Error| Error::io(path, e);
    let Some(file_name) = path.file_name() else {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path does not name a file",
        )));
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut prefix = OsString::from(".");
    prefix.push(file_name);
    prefix.push(".");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        // The usual mode of a new file (0666 less the umask), not tempfile's private 0600.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir).map_err(io)?;
    temp.write_all(bytes).map_err(io)?;
    temp.flush().map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    // On error the temporary file is deleted when the error drops it.
    temp.persist(path).map_err(|e| io(e.error))?;
    #[cfg(unix)]
    {
        // Makes the rename itself durable. Some file systems refuse to sync a
        // directory; the file is complete and renamed either way.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Reads a whole regular file, allocating no more than its size.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::io(path, e);
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::other("is a directory, not a safetensors file")));
    }
    if !meta.is_file() {
        return Err(Error::format(path, "not a regular file"));
    }
    let len = meta.len();
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
