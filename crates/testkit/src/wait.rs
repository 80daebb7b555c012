//! Polling for a condition with a deadline, instead of sleeping for a guessed duration.

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Something that can explain itself when a wait times out: a daemon's log, a table dump.
pub trait Diagnose {
    fn diagnose(&self) -> String;
}

/// Why a probe did not succeed yet.
#[derive(Debug)]
pub enum Retry {
    /// Not there yet; the description of what was observed is shown if the wait times out.
    Again(String),
    /// Waiting longer cannot help (a daemon exited): give up at once with this error.
    Fail(Error),
}

impl From<String> for Retry {
    fn from(state: String) -> Self {
        Retry::Again(state)
    }
}

impl From<&str> for Retry {
    fn from(state: &str) -> Self {
        Retry::Again(state.to_owned())
    }
}

const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Polls `probe` until it returns `Ok`, for at most `timeout`. `probe` returns
/// `Err(Retry::Again(state))` with a description of what it observed, and on timeout the error
/// shows the last such state; `Err(Retry::Fail(e))` ends the wait at once with `e`.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    probe: impl FnMut() -> std::result::Result<T, Retry>,
) -> Result<T> {
    wait_until_with(timeout, what, &[], probe)
}

/// Like [`wait_until`], and on timeout the error also carries the diagnostics (daemon logs) of
/// everything in `context`.
pub fn wait_until_with<T>(
    timeout: Duration,
    what: &str,
    context: &[&dyn Diagnose],
    mut probe: impl FnMut() -> std::result::Result<T, Retry>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe() {
            Ok(value) => return Ok(value),
            Err(Retry::Again(state)) => state,
            Err(Retry::Fail(err)) => return Err(err),
        };
        if Instant::now() >= deadline {
            let diagnostics = context
                .iter()
                .map(|c| c.diagnose())
                .collect::<Vec<_>>()
                .join("\n");
            return Err(Error::Timeout {
                what: what.to_owned(),
                timeout,
                last,
                diagnostics,
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Log;
    impl Diagnose for Log {
        fn diagnose(&self) -> String {
            "--- log of fake ---\nconnection refused".into()
        }
    }

    #[test]
    fn returns_value_once_condition_holds() {
        let mut n = 0;
        let got = wait_until(Duration::from_secs(5), "counter to reach 3", || {
            n += 1;
            if n >= 3 {
                Ok(n)
            } else {
                Err(format!("n={n}").into())
            }
        })
        .unwrap();
        assert_eq!(got, 3);
    }

    #[test]
    fn timeout_reports_last_state_and_diagnostics() {
        let mut n = 0;
        let err = wait_until_with(Duration::from_millis(250), "never", &[&Log], || {
            n += 1;
            Err::<(), _>(format!("attempt {n}").into())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("waiting for never"), "{err}");
        assert!(err.contains(&format!("attempt {n}")), "{err}");
        assert!(err.contains("connection refused"), "{err}");
    }

    #[test]
    fn fail_ends_the_wait_at_once() {
        let start = std::time::Instant::now();
        let err = wait_until(Duration::from_secs(30), "a dead daemon", || {
            Err::<(), _>(Retry::Fail(Error::Unsupported("giving up".into())))
        })
        .unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        assert!(start.elapsed() < Duration::from_secs(30));
    }
}
