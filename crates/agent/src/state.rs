//! The agent's local state file: the last desired state the controller sent, and the endpoints
//! added on this host with `clos agent endpoint add`. The agent starts from it and keeps
//! serving it while the controller is unreachable (fail static).
//!
//! Written atomically (a temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves either the old or the new state, never half of one.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use clos_model::DesiredStateAt;
use serde::{Deserialize, Serialize};

use crate::config::EndpointConfig;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalState {
    /// The last desired state from the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<DesiredStateAt>,
    /// Endpoints added on this host.
    #[serde(default)]
    pub endpoints: BTreeSet<EndpointConfig>,
}

impl LocalState {
    /// Reads the state file; a missing file is an empty state. A file that cannot be parsed
    /// is kept aside as `state.json.corrupt` and the agent starts empty (the controller fills
    /// the desired state in again), rather than refusing to start.
    pub fn load(path: &Path) -> Result<LocalState> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LocalState::default()),
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(state) => Ok(state),
            Err(e) => {
                let aside = path.with_extension("json.corrupt");
                tracing::error!(path = %path.display(), error = %e, aside = %aside.display(),
                    "the local state file is corrupt; starting without it");
                let _ = std::fs::rename(path, &aside);
                Ok(LocalState::default())
            }
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let err = |source| Error::StateWrite {
            path: path.to_owned(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&json).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(err)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clos_model::DesiredState;

    #[test]
    fn round_trips_and_survives_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(LocalState::load(&path).unwrap(), LocalState::default());
        let mut s = LocalState {
            desired: Some(DesiredStateAt {
                revision: 42,
                state: DesiredState {
                    node: "h1".into(),
                    asn: Some(4_200_000_001),
                    advertisements: vec!["10.0.0.0/26".parse().unwrap()],
                    addresses: vec![],
                },
            }),
            ..LocalState::default()
        };
        s.endpoints.insert(EndpointConfig {
            ip: "10.0.0.9".parse().unwrap(),
            interface: "veth9".into(),
        });
        s.save(&path).unwrap();
        assert_eq!(LocalState::load(&path).unwrap(), s);
        std::fs::write(&path, b"{\"desired\": tru").unwrap();
        assert_eq!(LocalState::load(&path).unwrap(), LocalState::default());
        assert!(path.with_extension("json.corrupt").exists());
    }
}
