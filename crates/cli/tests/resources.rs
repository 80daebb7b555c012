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

/// `clos` run with only the given environment for the client settings (none inherited).
fn clos_env(envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clos"));
    cmd.args(args)
        .env_remove("CLOS_SERVER")
        .env_remove("CLOS_TOKEN")
        .env_remove("CLOS_CONFIG")
        .env_remove("XDG_CONFIG_HOME");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn client_config_file_and_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("data"));
    ok(&s, &["create", "tenant", "acme"]);
    let cfg = dir.path().join("config.yaml");
    let cfg_s = cfg.to_str().unwrap();
    std::fs::write(
        &cfg,
        format!(
            "# written by the test\nserver: {}\ntoken: {}\n",
            s.url, s.token
        ),
    )
    .unwrap();

    // The file alone, named by CLOS_CONFIG.
    let out = clos_env(&[("CLOS_CONFIG", cfg_s)], &["get", "tenants"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("acme"));

    // The default location under $HOME (and $XDG_CONFIG_HOME when set).
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".config/clos")).unwrap();
    std::fs::copy(&cfg, home.join(".config/clos/config.yaml")).unwrap();
    let out = clos_env(&[("HOME", home.to_str().unwrap())], &["get", "tenants"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(xdg.join("clos")).unwrap();
    std::fs::copy(&cfg, xdg.join("clos/config.yaml")).unwrap();
    let out = clos_env(
        &[
            ("HOME", "/nonexistent"),
            ("XDG_CONFIG_HOME", xdg.to_str().unwrap()),
        ],
        &["get", "tenants"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The environment beats the file, and flags beat the environment.
    let out = clos_env(
        &[("CLOS_CONFIG", cfg_s), ("CLOS_TOKEN", "wrong")],
        &["get", "tenants"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let out = clos_env(
        &[("CLOS_CONFIG", cfg_s), ("CLOS_TOKEN", "wrong")],
        &["get", "tenants", "--token", &s.token],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = clos_env(
        &[
            ("CLOS_CONFIG", cfg_s),
            ("CLOS_SERVER", "http://127.0.0.1:1"),
        ],
        &["get", "tenants"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"));
    let out = clos_env(
        &[
            ("CLOS_CONFIG", cfg_s),
            ("CLOS_SERVER", "http://127.0.0.1:1"),
        ],
        &["get", "tenants", "--server", &s.url],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A malformed file: the error names the file and the field, and nothing is printed.
    std::fs::write(&cfg, format!("server: {}\ntokn: x\n", s.url)).unwrap();
    let out = clos_env(&[("CLOS_CONFIG", cfg_s)], &["get", "tenants"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(cfg_s) && err.contains("tokn"), "{err}");
    std::fs::write(&cfg, "server: https://10.0.0.1:7700\n").unwrap();
    let err =
        String::from_utf8_lossy(&clos_env(&[("CLOS_CONFIG", cfg_s)], &["get", "tenants"]).stderr)
            .into_owned();
    assert!(err.contains(cfg_s) && err.contains("`server`"), "{err}");
    let missing = dir.path().join("missing.yaml");
    let out = clos_env(
        &[("CLOS_CONFIG", missing.to_str().unwrap())],
        &["get", "tenants"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

#[test]
fn yaml_output() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    ok(
        &s,
        &["create", "tenant", "acme", "--description", "Acme: corp"],
    );
    let y = ok(&s, &["get", "tenants", "-o", "yaml"]);
    assert!(y.starts_with("- name: acme\n"), "{y}");
    assert!(y.contains("description: 'Acme: corp'"), "{y}");
    let y = ok(&s, &["get", "tenant", "acme", "--output", "yaml"]);
    assert!(y.starts_with("name: acme\n"), "{y}");
    let y = ok(&s, &["ipam", "check", "-o", "yaml"]);
    assert!(y.contains("healthy: true"), "{y}");
}
