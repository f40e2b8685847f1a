//! Files: the atomic write (and its temporary files) and the whole-file read.

use crate::error::{Error, Result};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// flushed and `fsync`ed, renamed over `path`, then the directory `fsync`ed
/// (on Unix). Readers see the old file or the new one, never a partial one;
/// a killed process leaves at most a stray `.<file name>.staticnet-tmp.<pid>.<n>`
/// behind, which the next save to `path` deletes once that process has ended.
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
    remove_stale_temps(dir, file_name);
    let mut temp = create_temp(dir, file_name).map_err(io)?;
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

/// Reads a whole regular safetensors file, allocating no more than its size;
/// a directory, FIFO, socket or device is refused at once.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    crate::fs::read_regular(path, "a safetensors file")
}

/// The marker in the names of temporary files: `.<file name>.staticnet-tmp.<pid>.<n>`.
const TEMP_MARKER: &str = ".staticnet-tmp.";

/// The temporary file for `file_name` in `dir`, named
/// `.<file name>.staticnet-tmp.<pid>.<n>` with `n` counting this process's saves.
fn create_temp(dir: &Path, file_name: &OsStr) -> std::io::Result<tempfile::NamedTempFile> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut prefix = OsString::from(".");
    prefix.push(file_name);
    prefix.push(format!("{TEMP_MARKER}{}.", std::process::id()));
    loop {
        let mut name = prefix.clone();
        name.push(COUNTER.fetch_add(1, Ordering::Relaxed).to_string());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&name).suffix("").rand_bytes(0);
        #[cfg(unix)]
        {
            // The usual mode of a new file (0666 less the umask), not tempfile's private 0600.
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        match builder.tempfile_in(dir) {
            // A name left by an earlier process with the same id: take the next number.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            other => return other,
        }
    }
}

/// Deletes the temporary files that earlier, interrupted saves of `file_name`
/// left in `dir`: names of exactly the form `.<file name>.staticnet-tmp.<pid>.<n>`
/// whose process is no longer running. Nothing else is touched; failures are ignored.
fn remove_stale_temps(dir: &Path, file_name: &OsStr) {
    let Some(file_name) = file_name.to_str() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{file_name}{TEMP_MARKER}");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(stale_pid) else {
            continue;
        };
        if pid != std::process::id() && !process_is_running(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The pid of a `<pid>.<n>` name tail (both all digits), else `None`.
fn stale_pid(tail: &str) -> Option<u32> {
    let (pid, n) = tail.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` may still be running (and writing its temporary file).
/// Where that cannot be told without `libc` (outside Linux), it is assumed to be.
fn process_is_running(pid: u32) -> bool {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_are_named_as_staticnet_s() {
        let dir = tempfile::tempdir().unwrap();
        let temp = create_temp(dir.path(), OsStr::new("w.safetensors")).unwrap();
        let name = temp.path().file_name().unwrap().to_str().unwrap().to_string();
        let tail = name.strip_prefix(".w.safetensors.staticnet-tmp.").unwrap();
        assert_eq!(stale_pid(tail), Some(std::process::id()), "{name}");
    }

    #[test]
    fn a_save_removes_stale_temporary_files_of_its_target_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        // u32::MAX is above every system's largest pid: no such process runs.
        let stale = [".w.bin.staticnet-tmp.4294967295.0", ".w.bin.staticnet-tmp.4294967295.17"];
        let kept = [
            ".w.bin.staticnet-tmp.4294967295.x",  // not the pattern
            ".w.bin.staticnet-tmp.4294967295",    // no number
            ".w.bin.staticnet-tmp..0",            // no pid
            ".v.bin.staticnet-tmp.4294967295.0",  // another target
            ".ww.bin.staticnet-tmp.4294967295.0", // another target
            ".w.bin.abc123.tmp",                  // not staticnet's
            "w.bin.staticnet-tmp.4294967295.0",   // not hidden
            "notes.txt",
        ];
        let own = format!(".w.bin.staticnet-tmp.{}.999999", std::process::id()); // a save in progress
        for name in stale.iter().chain(&kept).chain([&own.as_str()]) {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        write_atomic(dir.path().join("w.bin"), b"new").unwrap();
        assert_eq!(std::fs::read(dir.path().join("w.bin")).unwrap(), b"new");
        for name in stale {
            assert!(!dir.path().join(name).exists(), "{name} was left");
        }
        for name in kept.iter().chain([&own.as_str()]) {
            assert!(dir.path().join(name).exists(), "{name} was removed");
        }
        let count = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(count, kept.len() + 2, "the target, the kept files and the one in progress");
    }
}
