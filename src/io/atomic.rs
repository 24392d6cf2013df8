//! Atomic file writes: the bytes go to a temporary file in the destination's
//! folder, are flushed to disk (fsync), and only then renamed over the
//! destination. A crash, a full disk or an error leaves the old file (or no
//! file) in place, never a half-written one, and no temporary.
//!
//! The `disk-full-after-bytes:N` fault ([`crate::fault`], a testing hook)
//! simulates a full disk here: the write stops part-way with ENOSPC.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
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
}
