//! Fault injection, a testing hook: `SHADERGAN_FAULT` makes a run fail the
//! way a real machine can, so the tests can check that each fault gives one
//! clear error and loses nothing. Unset (the normal case), nothing here does
//! anything. The values:
//!
//! | `SHADERGAN_FAULT`           | what happens                                                   |
//! |-----------------------------|----------------------------------------------------------------|
//! | `lose-device-after-runs:N`  | after the N-th [`Executor::run`], a GPU executor calls `wgpu::Device::destroy` (the real device-lost path: the lost callback fires, later work fails) |
//! | `nan-in-params-at-run:N`    | after the N-th [`Executor::run`], the generator's first parameter is set to NaN through [`Executor::write`] |
//! | `disk-full-after-bytes:N`   | [`write_atomic`] fails with ENOSPC ("No space left on device") once the process has written N bytes through it |
//!
//! Runs are counted over the whole process; in `train` one run is one log
//! interval of steps (or a sample grid). A value that is none of these is
//! refused by the command line before anything runs.
//!
//! [`Executor::run`]: crate::backend::Executor::run
//! [`Executor::write`]: crate::backend::Executor::write
//! [`write_atomic`]: crate::io::atomic::write_atomic

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that names the fault to inject.
pub const FAULT_ENV: &str = "SHADERGAN_FAULT";

/// One injectable fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Destroy the GPU device after this many executor runs.
    LoseDeviceAfterRuns(u64),
    /// Put a NaN into the generator's parameters after this many executor runs.
    NanInParamsAtRun(u64),
    /// Fail atomic writes with ENOSPC once this many bytes have been written.
    DiskFullAfterBytes(u64),
}

impl std::str::FromStr for Fault {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Fault> {
        let usage = || {
            anyhow::anyhow!(
                "{FAULT_ENV}='{s}' is not a fault (a testing hook: lose-device-after-runs:N, \
                 nan-in-params-at-run:N or disk-full-after-bytes:N)"
            )
        };
        let (name, n) = s.split_once(':').ok_or_else(usage)?;
        let n: u64 = n.parse().map_err(|_| usage())?;
        match name {
            "lose-device-after-runs" => Ok(Fault::LoseDeviceAfterRuns(n)),
            "nan-in-params-at-run" => Ok(Fault::NanInParamsAtRun(n)),
            "disk-full-after-bytes" => Ok(Fault::DiskFullAfterBytes(n)),
            _ => Err(usage()),
        }
    }
}

/// The fault `SHADERGAN_FAULT` asks for: `None` when it is unset or empty,
/// an error when it names no fault.
pub fn from_env() -> anyhow::Result<Option<Fault>> {
    match std::env::var(FAULT_ENV) {
        Ok(s) if !s.is_empty() => s.parse().map(Some),
        _ => Ok(None),
    }
}

/// The fault of this process, read once (a malformed value counts as none:
/// the command line refuses it before anything runs).
fn active() -> Option<Fault> {
    static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
    *FAULT.get_or_init(|| from_env().ok().flatten())
}

static RUNS: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Counts one executor run; returns the fault to inject now, if this run is its N-th.
pub fn after_run() -> Option<Fault> {
    let fault = active()?;
    let (Fault::LoseDeviceAfterRuns(n) | Fault::NanInParamsAtRun(n)) = fault else {
        return None;
    };
    let run = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    (run == n).then_some(fault)
}

/// How many of the `len` bytes about to be written fit on the (simulated)
/// disk: all of them unless `disk-full-after-bytes` is set. Counts them as written.
pub fn disk_allowance(len: usize) -> usize {
    let Some(Fault::DiskFullAfterBytes(limit)) = active() else {
        return len;
    };
    let len64 = len as u64;
    let before = WRITTEN
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
            Some(w.saturating_add(len64).min(limit.max(w)))
        })
        .expect("the update always succeeds");
    (limit.saturating_sub(before).min(len64)) as usize
}

/// The error a full disk gives: ENOSPC, "No space left on device".
pub fn disk_full() -> std::io::Error {
    #[cfg(unix)]
    {
        // ENOSPC is 28 on Linux and the BSDs (macOS included).
        std::io::Error::from_raw_os_error(28)
    }
    #[cfg(not(unix))]
    {
        std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_others_are_refused_naming_the_hook() {
        assert_eq!(
            "lose-device-after-runs:3".parse::<Fault>().unwrap(),
            Fault::LoseDeviceAfterRuns(3)
        );
        assert_eq!(
            "nan-in-params-at-run:2".parse::<Fault>().unwrap(),
            Fault::NanInParamsAtRun(2)
        );
        assert_eq!(
            "disk-full-after-bytes:0".parse::<Fault>().unwrap(),
            Fault::DiskFullAfterBytes(0)
        );
        for bad in ["", "disk-full", "disk-full-after-bytes:x", "melt-down:1"] {
            let e = bad.parse::<Fault>().unwrap_err().to_string();
            assert!(e.contains(FAULT_ENV) && e.contains("testing hook"), "{e}");
        }
    }

    #[test]
    fn the_full_disk_is_the_os_error() {
        assert!(disk_full().to_string().contains("No space left on device"));
    }
}
