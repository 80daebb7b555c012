use std::time::Duration;

/// Everything the test kit can fail at. Messages carry what a developer needs to debug a test
/// without rerunning it: the command, its output, the last observed state, the daemon log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("could not run `{command}`: {source}; is the package that provides it installed?")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not parse {what} output: {detail}")]
    Parse { what: String, detail: String },
    #[error(
        "timed out after {timeout:?} waiting for {what}\n--- last observed state ---\n{last}\n{diagnostics}"
    )]
    Timeout {
        what: String,
        timeout: Duration,
        last: String,
        diagnostics: String,
    },
    #[error("{daemon} exited early ({status})\n{log}")]
    DaemonExited {
        daemon: String,
        status: String,
        log: String,
    },
    #[error("{0} is not supported by this daemon in the test kit")]
    Unsupported(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn parse(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
