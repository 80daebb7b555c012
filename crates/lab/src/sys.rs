//! Commands, namespaces and processes: thin wrappers over `ip`, `/proc` and signals.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::error::{Error, Result};

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion and returns its stdout; a non-zero exit is an error with stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("running {}", describe(cmd)), e))?;
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

/// `ip <args>`.
pub fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// `ip -n <ns> <args>`.
pub fn ip_n(ns: &str, args: &[&str]) -> Result<String> {
    run(Command::new("ip").arg("-n").arg(ns).args(args))
}

/// A command running `program` inside `ns`.
pub fn netns_command(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

/// Runs `program args` inside `ns` to completion.
pub fn netns_exec(ns: &str, program: &str, args: &[&str]) -> Result<String> {
    run(netns_command(ns, program).args(args))
}

/// Every network namespace name.
pub fn netns_list() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

pub fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// Pids of the processes in `ns`.
pub fn netns_pids(ns: &str) -> Vec<u32> {
    ip(&["netns", "pids", ns])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Stops every process in `ns` (TERM, then KILL after `grace`), then deletes it.
pub fn remove_netns(ns: &str, grace: Duration) -> Result<()> {
    if !netns_exists(ns) {
        return Ok(());
    }
    let mut seen: Vec<u32> = netns_pids(ns);
    for pid in &seen {
        signal(*pid, Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && netns_pids(ns).iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // A process that forks while we kill could survive one pass; a few passes settle it.
    for _ in 0..10 {
        let pids: Vec<u32> = netns_pids(ns).into_iter().filter(|p| alive(*p)).collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            signal(pid, Signal::KILL);
            seen.push(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // A process in the middle of exiting has already left the namespace (its /proc entry no
    // longer names it) but is not gone: wait for that too, so that nothing of the lab runs
    // once we return.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && seen.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    ip(&["netns", "del", ns]).map(drop)
}

/// Sends `sig` to `pid`; a process that is gone is not an error.
pub fn signal(pid: u32, sig: Signal) {
    if let Some(pid) = Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Whether `pid` runs (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// When process `pid` started (clock ticks since boot, `/proc/PID/stat` field 22): with the
/// pid, it names one process even after the pid is reused, which with 32768 pids and a lab's
/// churn of short commands happens within minutes.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name start at field 3 (the state).
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether the process that was `pid` when it started at `started` still runs; without a
/// start time, whether any process `pid` does.
pub fn running(pid: u32, started: Option<u64>) -> bool {
    alive(pid) && started.is_none_or(|t| start_time(pid) == Some(t))
}

/// Starts `cmd` in the background with stdout and stderr appended to `log`, in a process
/// group of its own (a Ctrl-C at the terminal of `clos lab up` does not reach it), and reaps
/// it when it exits. Returns its pid.
pub fn spawn(cmd: Command, log: &Path) -> Result<u32> {
    spawn_split(cmd, log, log)
}

/// [`spawn`] with stdout to `out` and stderr to `err`.
pub fn spawn_split(mut cmd: Command, out: &Path, err: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let open = |p: &Path| {
        File::options()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| Error::io(format!("opening {}", p.display()), e))
    };
    cmd.stdin(Stdio::null())
        .stdout(open(out)?)
        .stderr(open(err)?)
        .process_group(0);
    let what = describe(&cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("starting {what}"), e))?;
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(pid)
}

/// Runs `f` on a thread that has entered `ns`, so every socket it creates lives there.
pub fn in_netns<T, F>(ns: &str, f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| Error::io(format!("opening {path}"), e))?;
    let ns_name = ns.to_string();
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| Error::io(format!("entering namespace {ns_name}"), e.into()))?;
        Ok(f())
    })
    .join()
    .map_err(|_| Error::Invalid(format!("the thread in namespace {ns} panicked")))?
}

/// Writes `contents` to `path`, creating its directory.
pub fn write_file(path: &Path, contents: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    std::fs::write(path, contents).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Waits up to 15 s for a daemon just started as `pid` to be `ready` (its control socket
/// answers); its death ends the wait at once with the tail of its `log`. `process` names it
/// in errors (`bird in closlab-x-s1`).
pub fn wait_ready(
    process: &str,
    pid: u32,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    wait_for(
        &format!("{process} to open its control socket"),
        Duration::from_secs(15),
        Duration::from_millis(50),
        || {
            if !alive(pid) {
                return Err(Error::Died {
                    process: process.to_string(),
                    detail: log_tail(log),
                });
            }
            Ok(if ready() {
                Ok(())
            } else {
                Err("not answering yet".into())
            })
        },
    )
}

/// Renames `from` to `to`, replacing it.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        Error::io(
            format!("renaming {} to {}", from.display(), to.display()),
            e,
        )
    })
}

/// Polls `f` every `every` until it returns `Ok(Some(t))` or `timeout` passes; `Ok(None)`
/// keeps waiting with that state (shown on timeout), `Err` ends the wait at once.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<Result<T, String>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match f()? {
            Ok(t) => return Ok(t),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                seconds: timeout.as_secs(),
                last,
            });
        }
        std::thread::sleep(every);
    }
}

/// The last lines of a log, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(15);
    format!(
        "{} (last lines of {}):\n{}",
        "see the log",
        path.display(),
        lines[start..].join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_named_by_its_pid_and_start_time() {
        let me = std::process::id();
        let started = start_time(me).expect("our own start time");
        assert_eq!(start_time(me), Some(started), "stable");
        assert!(running(me, Some(started)));
        assert!(running(me, None));
        // The same pid with another start time is another process.
        assert!(!running(me, Some(started + 1)));
        assert_eq!(start_time(u32::MAX), None);
    }
}
