//! Atomic file writes: the bytes go to a temporary file in the destination's
//! folder, are flushed to disk (fsync), and only then renamed over the
//! destination. A crash, a full disk or an error leaves the old file (or no
//! file) in place, never a half-written one, and no temporary. A process
//! killed mid-write (SIGKILL) can leave its temporary behind: the next `train`
//! or `train --resume` of that run folder removes it ([`remove_stale_temporaries`]).
//!
//! The `disk-full-after-bytes:N` fault ([`crate::fault`], a testing hook)
//! simulates a full disk here: the write stops part-way with ENOSPC.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Marks the temporary of an atomic write: `.NAME.tmp-PID`.
const TEMPORARY_MARK: &str = ".tmp-";

fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}{TEMPORARY_MARK}{}", std::process::id()))
}

/// Whether `name` is the temporary of an atomic write (`.NAME.tmp-PID`).
pub fn is_temporary_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(TEMPORARY_MARK)
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the temporaries that killed writers left in `dir` and in the
/// folders `subdirs` under it; returns how many went. Only for a folder this
/// process holds the [`super::run_lock::RunLock`] of, so no live writer owns them.
pub fn remove_stale_temporaries(dir: &Path, subdirs: &[&str]) -> anyhow::Result<usize> {
    let mut removed = 0;
    let folders = std::iter::once(dir.to_path_buf()).chain(subdirs.iter().map(|s| dir.join(s)));
    for folder in folders {
        let Ok(entries) = fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if is_temporary_name(&name.to_string_lossy()) && entry.path().is_file() {
                fs::remove_file(entry.path()).with_context(|| {
                    format!(
                        "cannot remove the stale temporary {}",
                        entry.path().display()
                    )
                })?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = temporary_path(path);
    let result = (|| -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        let fits = crate::fault::disk_allowance(bytes.len());
        file.write_all(&bytes[..fits])?;
        if fits < bytes.len() {
            return Err(crate::fault::disk_full());
        }
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable (best effort: not every platform can open a folder).
        if let Some(Ok(d)) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(File::open)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_leave_no_temporaries() {
        let dir = std::env::temp_dir().join(format!("shadergan-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.bin");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "left behind: {names:?}");
        // A folder that does not exist: an error naming the file, nothing created.
        let bad = dir.join("missing").join("b.bin");
        let e = write_atomic(&bad, b"x").unwrap_err();
        assert!(format!("{e:#}").contains("b.bin"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("shadergan-stale-{}", std::process::id()));
        fs::create_dir_all(dir.join("samples")).unwrap();
        let keep = [
            ".shadergan.lock",
            "losses.csv",
            ".x.tmp-",
            "a.tmp-12",
            ".y.tmp-1a",
        ];
        let stale = [
            ".checkpoint.safetensors.tmp-4242",
            "samples/.step-0000010.png.tmp-7",
        ];
        for name in keep.iter().chain(&stale) {
            fs::write(dir.join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(&dir, &["samples"]).unwrap(), 2);
        for name in keep {
            assert!(dir.join(name).exists(), "{name} was removed");
        }
        for name in stale {
            assert!(!dir.join(name).exists(), "{name} is still there");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
