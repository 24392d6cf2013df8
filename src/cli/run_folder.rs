//! Run folders: what `train` and `sweep` check before anything runs.

use std::path::Path;

/// Refuses, before anything runs, a run folder that cannot be created: one
/// under a regular file (ENOTDIR), or in a folder this user may not write.
/// Probes by creating (and removing) a folder in the nearest existing ancestor
/// (or in `out` itself, an empty folder).
pub fn check_creatable(out: &Path) -> anyhow::Result<()> {
    let mut base = Some(out);
    while let Some(b) = base {
        if b.as_os_str().is_empty() || b.exists() || std::fs::symlink_metadata(b).is_ok() {
            break;
        }
        base = b.parent();
    }
    let base = base
        .filter(|b| !b.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = base.join(format!(".shadergan-probe-{}", std::process::id()));
    match std::fs::create_dir(&probe) {
        Ok(()) => {
            let _ = std::fs::remove_dir(&probe);
            Ok(())
        }
        Err(e) => anyhow::bail!("cannot create run folder {}: {e}", out.display()),
    }
}
