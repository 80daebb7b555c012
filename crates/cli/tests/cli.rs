//! The `clos` binary's contract with scripts: results on stdout (tables, `-o json|yaml`), errors
//! on stderr with a non-zero exit.

use std::process::{Command, Output};

fn clos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clos"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn version_as_table_and_json() {
    let out = clos(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("clos {}", env!("CARGO_PKG_VERSION"))
    );

    let out = clos(&["version", "-o", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));

    let out = clos(&["version", "-o", "yaml"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("name: clos\nversion: {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_subcommands() {
    let out = clos(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: clos"), "{help}");
    assert!(help.contains("version"), "{help}");
    assert!(help.contains("--output"), "{help}");
}

#[test]
fn bad_usage_goes_to_stderr_with_nonzero_exit() {
    let out = clos(&["no-such-command"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-command"));

    let out = clos(&["version", "-o", "xml"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("xml"));
}
