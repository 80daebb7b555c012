//! `clos controller` and the resource commands end to end: a real controller process on a
//! loopback port with a durable store in a temporary directory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

struct Server {
    child: Child,
    url: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clos"))
        .args(["controller", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut token = String::new();
    let url = loop {
        let line = lines.next().expect("controller exited").unwrap();
        if let Some(t) = line.strip_prefix("admin token (shown once, store it safely): ") {
            token = t.to_string();
        }
        if let Some(a) = line.strip_prefix("listening on ") {
            break format!("http://{a}");
        }
    };
    Server { child, url, token }
}

fn clos(s: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clos"))
        .args(args)
        .env("CLOS_SERVER", &s.url)
        .env("CLOS_TOKEN", &s.token)
        .output()
        .unwrap()
}

fn ok(s: &Server, args: &[&str]) -> String {
    let out = clos(s, args);
    assert!(
        out.status.success(),
        "clos {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn controller_and_resource_commands() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    assert_eq!(s.token.len(), 64, "no admin token printed");

    ok(&s, &["create", "tenant", "acme"]);
    ok(&s, &["create", "pool", "tp", "--cidr", "10.0.0.0/16"]);
    ok(
        &s,
        &[
            "create",
            "pool",
            "fip",
            "--cidr",
            "192.0.2.0/24",
            "--kind",
            "floating-ips",
        ],
    );
    ok(
        &s,
        &[
            "create",
            "subnet",
            "web",
            "--tenant",
            "acme",
            "--pool",
            "tp",
            "--prefix-len",
            "24",
        ],
    );
    ok(&s, &["create", "node", "n1"]);
    let table = ok(
        &s,
        &[
            "create", "address", "--subnet", "web", "--owner", "vm-1", "--node", "n1",
        ],
    );
    assert!(table.contains("10.0.0.0"), "{table}");
    ok(
        &s,
        &[
            "create",
            "address",
            "--pool",
            "fip",
            "--owner",
            "acme/lb",
            "--owner-kind",
            "service",
        ],
    );

    let json = ok(&s, &["get", "subnets", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["name"], "web");
    assert_eq!(v[0]["cidr"], "10.0.0.0/24");
    assert_eq!(v[0]["usage"]["allocated"], 1);
    let table = ok(&s, &["get", "addresses", "--subnet", "web"]);
    assert!(table.contains("vm-1") && table.contains("n1"), "{table}");
    let table = ok(&s, &["get", "address", "192.0.2.0"]);
    assert!(table.contains("acme"), "{table}");
    let table = ok(&s, &["get", "nodes"]);
    assert!(
        table.contains("n1") && table.contains("4200010000"),
        "{table}"
    );
    assert!(ok(&s, &["ipam", "check"]).contains("healthy"));
    assert!(ok(&s, &["ipam", "check", "--repair", "-o", "json"]).contains("\"healthy\": true"));

    // A tenant token sees only its own tenant's subnets.
    let t = ok(
        &s,
        &[
            "create", "token", "--role", "tenant", "--tenant", "other", "-o", "json",
        ],
    );
    let secret = serde_json::from_str::<serde_json::Value>(&t).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_clos"))
        .args([
            "get", "subnets", "-o", "json", "--server", &s.url, "--token", &secret,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    // Errors: the problem detail on stderr, nothing on stdout, non-zero exit.
    let out = clos(&s, &["delete", "subnet", "web"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("still holds 1 address"), "{err}");
    assert!(err.contains("release"), "{err}");
    let out = clos(
        &s,
        &[
            "create",
            "subnet",
            "x",
            "--tenant",
            "acme",
            "--pool",
            "tp",
            "--cidr",
            "10.0.0.128/25",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("overlaps"));
    let out = Command::new(env!("CARGO_BIN_EXE_clos"))
        .args(["get", "tenants", "--server", &s.url, "--token", "wrong"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    ok(&s, &["delete", "address", "10.0.0.0"]);
    ok(&s, &["delete", "subnet", "web"]);
    assert!(ok(&s, &["get", "subnets"]).lines().count() == 1);

    // Restart on the same directory: state kept, no new admin token.
    let admin = s.token.clone();
    drop(s);
    let mut s2 = start(dir.path());
    assert!(s2.token.is_empty(), "a second admin token was printed");
    s2.token = admin;
    assert!(ok(&s2, &["get", "tenants"]).contains("acme"));
    assert!(ok(&s2, &["get", "addresses", "--pool", "fip"]).contains("acme/lb"));
}
