//! `clos lab sync`: keeps every switch on the config the controller renders now. A host's
//! assignment changes after `up` (a new address block, a floating IP), and its leaves must
//! accept the new prefixes; `up` starts `clos lab sync --watch` in the management namespace,
//! which renders every switch every few seconds and applies what changed.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::lab::Lab;
use crate::switch;
use crate::topology::SwitchSoftware;

/// What a sync did to one switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncResult {
    /// The rendered config is the one the switch runs.
    Unchanged,
    /// The switch now runs the new rendering.
    Applied,
    /// The new rendering could not be applied; the switch keeps its config.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct SwitchSync {
    pub switch: String,
    pub software: SwitchSoftware,
    pub result: SyncResult,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Lab {
    /// Renders every switch's config and applies those that changed (see
    /// [`switch::reconfigure`]). One switch failing does not stop the others. Fails as a whole
    /// only when the controller cannot render (it is down, say): then nothing changes.
    pub fn sync(&self, exe: &Path) -> Result<Vec<SwitchSync>> {
        let rendered = self.render_switches()?;
        let mut out = Vec::with_capacity(rendered.len());
        for (s, software, config) in rendered {
            let dir = switch::dir_of(self.dir(), &s.name);
            let running =
                std::fs::read_to_string(switch::config_file(software, &dir)).unwrap_or_default();
            let (result, detail) = if running == config {
                (SyncResult::Unchanged, None)
            } else {
                match switch::reconfigure(software, exe, &s.netns, &dir, &config) {
                    Ok(_) => (SyncResult::Applied, None),
                    Err(e) => (SyncResult::Failed, Some(e.to_string())),
                }
            };
            out.push(SwitchSync {
                switch: s.name.clone(),
                software,
                result,
                detail,
            });
        }
        Ok(out)
    }
}
