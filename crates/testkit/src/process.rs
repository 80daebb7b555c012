//! Child processes: one-shot commands and long-running daemons that die with their owner.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Error, Result};

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion and returns its stdout; a non-zero exit is an error carrying stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<String> {
    let output = cmd.output().map_err(|source| Error::Spawn {
        command: describe(cmd),
        source,
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        Err(Error::Command {
            command: describe(cmd),
            status: output.status.to_string(),
            stderr,
        })
    }
}

/// A long-running process whose stdout and stderr go to a log file. It is killed when dropped.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Mutex<Option<Child>>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with its output appended to `log`.
    pub fn spawn(name: impl Into<String>, mut cmd: Command, log: &Path) -> Result<Self> {
        let name = name.into();
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("opening log {}", log.display()), e))?;
        let file2 = file
            .try_clone()
            .map_err(|e| Error::io("duplicating log handle", e))?;
        cmd.stdin(Stdio::null()).stdout(file).stderr(file2);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            command: describe(&cmd),
            source,
        })?;
        Ok(Daemon {
            name,
            child: Mutex::new(Some(child)),
            log: log.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(Child::id)
    }

    /// The last `lines` lines of the daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// An error if the daemon has exited, carrying its exit status and log.
    pub fn check_running(&self) -> Result<()> {
        let mut guard = self.lock();
        let status = match guard.as_mut() {
            None => "stopped by the test".to_owned(),
            Some(child) => match child.try_wait() {
                Ok(None) => return Ok(()),
                Ok(Some(status)) => status.to_string(),
                Err(err) => err.to_string(),
            },
        };
        drop(guard);
        Err(Error::DaemonExited {
            daemon: self.name.clone(),
            status,
            log: self.log_tail(40),
        })
    }

    /// Asks the daemon to exit (SIGTERM) and waits up to `grace`, then kills it.
    pub fn stop(&self, grace: Duration) {
        let Some(mut child) = self.lock().take() else {
            return;
        };
        let _ = run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the daemon at once with SIGKILL, as a crash would.
    pub fn kill(&self) {
        if let Some(mut child) = self.lock().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        // A poisoned lock only means another thread panicked while holding it; the child handle
        // is still valid and must still be reaped.
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

impl crate::wait::Diagnose for Daemon {
    fn diagnose(&self) -> String {
        format!("--- {} log ---\n{}", self.name, self.log_tail(40))
    }
}
