//! SIGINT, SIGTERM and SIGHUP stop a run cleanly: the first asks the
//! training loops to stop after the steps in flight (they write their
//! checkpoint and the command exits with 128 + the signal's number); a second
//! signal exits at once with that status. Every file is written atomically,
//! so an exit at any moment leaves no torn file (a stale temporary at most,
//! which the next start in that folder removes).

use shadergan::gan::stop;

/// The signals that stop a run: Ctrl-C, a scheduler's stop, a closed terminal.
#[cfg(unix)]
const STOP_SIGNALS: [i32; 3] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];
#[cfg(not(unix))]
const STOP_SIGNALS: [i32; 2] = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];

/// Installs the stop handlers for the life of the process.
pub fn install() -> anyhow::Result<()> {
    for signal in STOP_SIGNALS {
        let action = move || {
            if stop::request(signal) {
                signal_hook::low_level::exit(128 + signal);
            }
        };
        // SAFETY: the action only swaps an atomic word and calls `_exit`,
        // both async-signal-safe.
        unsafe { signal_hook::low_level::register(signal, action) }
            .map_err(|e| anyhow::anyhow!("cannot install the handler of signal {signal}: {e}"))?;
    }
    Ok(())
}

/// `SIGTERM`-style name of a signal number.
pub fn name(signal: i32) -> String {
    signal_hook::low_level::signal_name(signal)
        .map_or_else(|| format!("signal {signal}"), str::to_string)
}
