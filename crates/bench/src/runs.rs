//! Runs interleaved over devices (run 1 of each, then run 2 of each...), so that other load on
//! the machine spreads over all of them, and the best run of each.

use serde::Serialize;

use crate::Result;

/// A run's headline figure: lower is better.
pub trait Timed {
    fn seconds(&self) -> f64;
}

/// One device's runs.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceRuns<R> {
    pub device: &'static str,
    pub version: String,
    /// The fastest run.
    pub best: Option<R>,
    pub runs: Vec<R>,
    /// Why the device stopped being run (a failed run ends its series).
    pub error: Option<String>,
}

/// Runs each of `devices` (with its name and version) `runs` times, interleaved. `once` runs
/// one (device, label, run number); `progress` is the line printed after a good run.
pub fn interleave<D: Copy, R: Timed + Clone>(
    devices: &[(D, &'static str, String)],
    runs: usize,
    mut once: impl FnMut(D, &str, usize) -> Result<R>,
    progress: impl Fn(&R) -> String,
) -> Vec<DeviceRuns<R>> {
    let mut results: Vec<DeviceRuns<R>> = devices
        .iter()
        .map(|(_, name, version)| DeviceRuns {
            device: name,
            version: version.clone(),
            best: None,
            runs: Vec::new(),
            error: None,
        })
        .collect();
    for run in 1..=runs {
        for ((device, name, _), result) in devices.iter().zip(&mut results) {
            if result.error.is_some() {
                continue;
            }
            let label = format!("{name} run {run}/{runs}");
            match once(*device, &label, run) {
                Ok(r) => {
                    eprintln!("[{label}] {}", progress(&r));
                    result.runs.push(r);
                }
                Err(err) => {
                    eprintln!("[{label}] failed: {err}");
                    result.error = Some(err.to_string());
                }
            }
        }
    }
    for r in &mut results {
        r.best = r
            .runs
            .iter()
            .min_by(|a, b| a.seconds().total_cmp(&b.seconds()))
            .cloned();
    }
    results
}
