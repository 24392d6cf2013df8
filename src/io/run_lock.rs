//! One writer per run folder: an advisory lock on `DIR/.shadergan.lock`,
//! held for as long as the [`RunLock`] lives.
//!
//! The lock is the operating system's file lock (`flock` on Unix, `LockFileEx`
//! on Windows, through [`std::fs::File::try_lock`]), so a process that dies,
//! even by SIGKILL, releases it: a lock left by a dead process never blocks.
//! The holder writes its PID into the file, so a refused process can name it.
//! Within one process the lock is shared: acquiring a folder this process
//! already holds returns the same lock (the command takes it before reading a
//! checkpoint to resume, the trainer takes it again before writing).

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

/// The lock file's name inside a run folder.
pub const LOCK_FILE: &str = ".shadergan.lock";

/// Why a run folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("run folder {} is in use by another shadergan process{}", dir.display(),
        pid.map_or(String::new(), |p| format!(" (PID {p})")))]
    Held { dir: PathBuf, pid: Option<u32> },
    #[error("cannot lock run folder {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// A held lock on a run folder (released when the last clone is dropped).
#[derive(Clone, Debug)]
pub struct RunLock {
    inner: Arc<Held>,
}

#[derive(Debug)]
struct Held {
    _file: File,
    dir: PathBuf,
}

/// The folders this process holds, by canonical path.
fn held() -> &'static Mutex<HashMap<PathBuf, Weak<Held>>> {
    static HELD: std::sync::OnceLock<Mutex<HashMap<PathBuf, Weak<Held>>>> =
        std::sync::OnceLock::new();
    HELD.get_or_init(|| Mutex::new(HashMap::new()))
}

impl RunLock {
    /// Locks the existing folder `dir`, or returns the lock this process
    /// already holds on it; refuses a folder another process holds.
    pub fn acquire(dir: &Path) -> Result<RunLock, LockError> {
        let io = |source| LockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        let key = dir.canonicalize().map_err(io)?;
        let mut table = held().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(inner) = table.get(&key).and_then(Weak::upgrade) {
            return Ok(RunLock { inner });
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    pid: holder_pid(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        write_pid(&mut file).map_err(io)?;
        let inner = Arc::new(Held {
            _file: file,
            dir: dir.to_path_buf(),
        });
        table.insert(key, Arc::downgrade(&inner));
        Ok(RunLock { inner })
    }

    /// The folder this lock holds.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

/// The PID the holder wrote into the lock file, if it has written one yet.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_process_shares_its_lock_and_a_dropped_lock_is_free_again() {
        let dir = std::env::temp_dir().join(format!("shadergan-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = RunLock::acquire(&dir).unwrap();
        let again = RunLock::acquire(&dir).unwrap();
        assert!(Arc::ptr_eq(&first.inner, &again.inner));
        let pid = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        // Another open file description is refused while the lock is held.
        let other = File::open(dir.join(LOCK_FILE)).unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop((first, again));
        other.try_lock().expect("free once every holder is dropped");
        drop(other);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_it() {
        let e = RunLock::acquire(Path::new("/nonexistent/shadergan-run")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/shadergan-run"), "{e}");
    }
}
