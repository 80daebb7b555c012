//! Names of everything the test kit creates. Each name embeds the creating process id, so that
//! parallel test processes (`cargo nextest` runs one process per test) never collide, and the
//! sweeper can tell a leftover of a dead process from a live test's object.

use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every namespace and scratch directory the test kit creates. Nothing else uses it.
pub const PREFIX: &str = "clos-t";
/// Prefix of interface names (IFNAMSIZ allows 15 bytes, so it is shorter).
pub const LINK_PREFIX: &str = "cv";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A fresh namespace name: `clos-t<pid>-<n>`.
pub fn netns() -> String {
    format!("{PREFIX}{}-{}", std::process::id(), next())
}

/// A fresh interface name of at most 15 bytes: `cv<pid>-<n>` (pid up to 7 digits).
pub fn link() -> String {
    let name = format!("{LINK_PREFIX}{}-{}", std::process::id(), next());
    debug_assert!(name.len() <= 15, "interface name {name} exceeds IFNAMSIZ");
    name
}

/// Prefix for scratch directories of this process.
pub fn scratch_prefix() -> String {
    format!("{PREFIX}{}-", std::process::id())
}

/// The pid that created `name`, if `name` is one of ours.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(PREFIX)
        .or_else(|| name.strip_prefix(LINK_PREFIX))?;
    let pid = rest.split('-').next()?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_owner_pid() {
        let me = std::process::id();
        assert_eq!(owner_pid(&netns()), Some(me));
        assert_eq!(owner_pid(&link()), Some(me));
        assert!(link().len() <= 15);
        assert_eq!(owner_pid("eth0"), None);
        assert_eq!(owner_pid("clos-tabc-1"), None);
        assert_ne!(netns(), netns());
    }
}
