//! Reading back the per-step CSV files a run keeps (`losses.csv`,
//! `modes.csv`) when it is resumed: a header line, then one row per step.

use std::path::Path;

/// The rows of the CSV at `path` whose step is at most `upto`, each parsed by
/// `parse` (`None`: the line is malformed, named in the error with its
/// number). An absent file has no rows.
pub fn read_rows_upto<T>(
    path: &Path,
    upto: u64,
    parse: impl Fn(&str) -> Option<(u64, T)>,
) -> anyhow::Result<Vec<(u64, T)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let row = parse(line)
            .ok_or_else(|| anyhow::anyhow!("{} line {} is malformed", path.display(), i + 1))?;
        if row.0 <= upto {
            rows.push(row);
        }
    }
    Ok(rows)
}
