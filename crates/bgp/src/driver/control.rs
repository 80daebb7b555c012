//! A local control socket, like `birdc`'s: one request line in, one JSON document out.
//!
//! Requests: `status`. The socket is a Unix stream socket, so file permissions decide who may
//! ask; it is created mode 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{DriverError, SpeakerHandle, SpeakerStatus};

/// Serves `handle`'s status on `path` until the speaker stops. Replaces a stale socket file.
pub async fn serve(handle: SpeakerHandle, path: PathBuf) -> Result<(), DriverError> {
    let listener = bind(&path)?;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _ = answer(stream, &handle).await;
        });
    }
}

fn bind(path: &Path) -> Result<UnixListener, DriverError> {
    let control = |source| DriverError::Control {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(control)?;
    }
    // A live socket means another speaker is running; a dead one was left by a killed
    // speaker and would make bind fail.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(control(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another speaker is already serving this control socket; stop it or pick another --control path",
        )));
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(control)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(control)?;
    Ok(listener)
}

async fn answer(stream: UnixStream, handle: &SpeakerHandle) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    BufReader::new(rd).read_line(&mut line).await?;
    let reply = match line.trim() {
        "status" => match handle.status().await {
            Ok(status) => serde_json::to_string(&status).map_err(std::io::Error::other)?,
            Err(err) => serde_json::json!({ "error": err.to_string() }).to_string(),
        },
        other => serde_json::json!({ "error": format!("unknown request {other:?}: try `status`") })
            .to_string(),
    };
    wr.write_all(reply.as_bytes()).await?;
    wr.write_all(b"\n").await?;
    wr.shutdown().await
}

/// Asks the speaker behind `path` for its status.
pub async fn status(path: &Path) -> Result<SpeakerStatus, DriverError> {
    let control = |source| DriverError::Control {
        path: path.to_owned(),
        source,
    };
    let stream = UnixStream::connect(path).await.map_err(control)?;
    let (rd, mut wr) = stream.into_split();
    wr.write_all(b"status\n").await.map_err(control)?;
    let mut line = String::new();
    BufReader::new(rd)
        .read_line(&mut line)
        .await
        .map_err(control)?;
    serde_json::from_str(&line)
        .map_err(|e| control(std::io::Error::other(format!("bad reply {line:?}: {e}"))))
}
