//! A local control socket, like `birdc`'s: one request line in, one JSON document out.
//!
//! Requests: `status`, `routes` (the Loc-RIB), `routes ADDRESS` (what that peer sent us,
//! after import policy) and `refresh ADDRESS` (ask that peer for a route refresh; the reply
//! lists the families asked for). The socket is a Unix stream socket, so file permissions decide who may
//! ask; it is created mode 0600.
//!
//! `status` carries the kernel FIB's state too when the caller serves with
//! [`serve_with_fib`] (`clos bgp run` with a `fib` section).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::{DriverError, FibStatus, RouteEntry, SpeakerHandle, SpeakerStatus};

/// Serves `handle`'s status on `path` until the speaker stops. Replaces a stale socket file.
pub async fn serve(handle: SpeakerHandle, path: PathBuf) -> Result<(), DriverError> {
    serve_inner(handle, path, None).await
}

/// As [`serve`], with the latest state of the kernel FIB the speaker feeds in `status`.
pub async fn serve_with_fib(
    handle: SpeakerHandle,
    path: PathBuf,
    fib: watch::Receiver<FibStatus>,
) -> Result<(), DriverError> {
    serve_inner(handle, path, Some(fib)).await
}

async fn serve_inner(
    handle: SpeakerHandle,
    path: PathBuf,
    fib: Option<watch::Receiver<FibStatus>>,
) -> Result<(), DriverError> {
    let listener = bind(&path)?;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        let fib = fib.as_ref().map(|f| f.borrow().clone());
        tokio::spawn(async move {
            let _ = answer(stream, &handle, fib).await;
        });
    }
}

fn bind(path: &Path) -> Result<UnixListener, DriverError> {
    bind_socket(path, "another speaker").map_err(|source| DriverError::Control {
        path: path.to_owned(),
        source,
    })
}

/// Binds a control socket at `path`, mode 0600, creating its directory. A live socket there
/// means `holder` (`"another speaker"`) serves it already: an error; a dead one, left by a
/// killed process, would make bind fail, so it is removed. Must be called within a tokio
/// runtime.
pub fn bind_socket(path: &Path, holder: &str) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "{holder} is already serving this control socket; stop it or pick another path"
            ),
        ));
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn answer(
    stream: UnixStream,
    handle: &SpeakerHandle,
    fib: Option<FibStatus>,
) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    BufReader::new(rd).read_line(&mut line).await?;
    let reply = match line.trim() {
        "status" => match handle.status().await {
            Ok(mut status) => {
                status.fib = fib;
                serde_json::to_string(&status).map_err(std::io::Error::other)?
            }
            Err(err) => serde_json::json!({ "error": err.to_string() }).to_string(),
        },
        request if request == "routes" || request.starts_with("routes ") => {
            routes_reply(handle, request).await?
        }
        request if request.starts_with("refresh ") => refresh_reply(handle, request).await?,
        other => serde_json::json!({
            "error": format!(
                "unknown request {other:?}: try `status`, `routes [PEER]` or `refresh PEER`"
            )
        })
        .to_string(),
    };
    wr.write_all(reply.as_bytes()).await?;
    wr.write_all(b"\n").await?;
    wr.shutdown().await
}

async fn routes_reply(handle: &SpeakerHandle, request: &str) -> std::io::Result<String> {
    let error = |e: String| serde_json::json!({ "error": e }).to_string();
    let peer = match request.strip_prefix("routes ").map(str::parse) {
        None => None,
        Some(Ok(ip)) => Some(ip),
        Some(Err(_)) => {
            return Ok(error(format!(
                "{request:?}: give the peer as an IP address"
            )));
        }
    };
    Ok(match handle.routes(peer).await {
        Ok(Some(routes)) => serde_json::to_string(&routes).map_err(std::io::Error::other)?,
        Ok(None) => error(format!(
            "no peer {}: see `clos bgp status`",
            peer.map(|p| p.to_string()).unwrap_or_default()
        )),
        Err(err) => error(err.to_string()),
    })
}

async fn refresh_reply(handle: &SpeakerHandle, request: &str) -> std::io::Result<String> {
    let error = |e: String| serde_json::json!({ "error": e }).to_string();
    let Some(Ok(peer)) = request.strip_prefix("refresh ").map(str::parse) else {
        return Ok(error(format!(
            "{request:?}: give the peer as an IP address"
        )));
    };
    Ok(match handle.refresh(peer).await {
        Ok(families) => {
            let names: Vec<String> = families
                .iter()
                .map(|f| format!("{:?} {:?}", f.afi, f.safi).to_lowercase())
                .collect();
            serde_json::to_string(&names).map_err(std::io::Error::other)?
        }
        Err(err) => error(err.to_string()),
    })
}

/// Asks the speaker behind `path` to request a route refresh from `peer`; returns the families
/// asked for.
pub async fn refresh(path: &Path, peer: std::net::IpAddr) -> Result<Vec<String>, DriverError> {
    request(path, &format!("refresh {peer}")).await
}

/// Asks the speaker behind `path` for its status.
pub async fn status(path: &Path) -> Result<SpeakerStatus, DriverError> {
    request(path, "status").await
}

/// Asks the speaker behind `path` for its Loc-RIB, or for what `peer` sent.
pub async fn routes(
    path: &Path,
    peer: Option<std::net::IpAddr>,
) -> Result<Vec<RouteEntry>, DriverError> {
    match peer {
        Some(p) => request(path, &format!("routes {p}")).await,
        None => request(path, "routes").await,
    }
}

/// One request line, one JSON reply; a reply `{"error": ...}` becomes an error.
async fn request<T: serde::de::DeserializeOwned>(
    path: &Path,
    line: &str,
) -> Result<T, DriverError> {
    let control = |source| DriverError::Control {
        path: path.to_owned(),
        source,
    };
    let stream = UnixStream::connect(path).await.map_err(control)?;
    let (rd, mut wr) = stream.into_split();
    wr.write_all(format!("{line}\n").as_bytes())
        .await
        .map_err(control)?;
    let mut reply = String::new();
    BufReader::new(rd)
        .read_line(&mut reply)
        .await
        .map_err(control)?;
    let bad =
        |e: serde_json::Error| control(std::io::Error::other(format!("bad reply {reply:?}: {e}")));
    let value: serde_json::Value = serde_json::from_str(&reply).map_err(bad)?;
    if let Some(error) = value.get("error").and_then(serde_json::Value::as_str) {
        return Err(control(std::io::Error::other(error.to_owned())));
    }
    serde_json::from_value(value).map_err(bad)
}
