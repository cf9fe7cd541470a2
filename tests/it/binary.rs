//! The `hookauth` binary itself: start-up, readiness line, graceful shutdown, the admin
//! subcommands and configuration errors.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, SECRET, send};

pub(crate) fn hookauth(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookauth"));
    cmd.current_dir(dir)
        .env_remove("HOOKAUTH_TEST_POSTGRES_URL")
        .env("HOOKAUTH_SECRET_KEY", SECRET)
        .env("HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB", "1024")
        .env("HOOKAUTH_PASSWORD__ARGON2_ITERATIONS", "1")
        .env("HOOKAUTH_LOG", "info");
    cmd
}

/// The JSON a successful command printed (its stderr on failure).
fn success_json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn serve_announces_its_address_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // Admin subcommands work on the same embedded database the server will use.
    let mut create = hookauth(dir.path())
        .args(["user", "create-superuser", "--email", "Root@Example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(create.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = create.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("superuser root@example.com created"));
    let out = hookauth(dir.path())
        .args(["tenant", "create", "acme"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut server = hookauth(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server printed its address").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert!(
        dir.path().join("hookauth.db").exists(),
        "SQLite file created on first start"
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (status, body) = send(
        &http,
        reqwest::Method::POST,
        format!("http://{addr}/api/v1/auth/login"),
        None,
        Some(json!({"email": "root@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["is_superuser"], true);
    let (status, _) = send(
        &http,
        reqwest::Method::POST,
        format!("http://{addr}/t/acme/api/v1/auth/register"),
        None,
        Some(json!({"email": "a@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[test]
fn configuration_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = hookauth(dir.path())
        .env("HOOKAUTH_JWT__ISUER", "typo")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("isuer"));

    // One line for the operator, even where RUST_BACKTRACE is set.
    let out = hookauth(dir.path())
        .env("HOOKAUTH_SECRET_KEY", "too-short")
        .env("RUST_BACKTRACE", "1")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: secret_key must be at least 32 bytes (got 9); generate one with \
         `openssl rand -hex 32`"
    );

    std::fs::write(
        dir.path().join("hookauth.toml"),
        "[lockout]\nmax_attempts = 3\nbogus = 1\n",
    )
    .unwrap();
    let out = hookauth(dir.path()).arg("migrate").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

#[test]
fn hooks_check_and_run_show_an_author_what_the_server_would_do() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("10-audit.wasm");
    std::fs::write(&audit, crate::shared::guest("audit-log")).unwrap();
    let out = hookauth(dir.path())
        .args(["hooks", "check"])
        .arg(&audit)
        .output()
        .unwrap();
    let report = success_json(&out);
    assert_eq!(report["hook"], "10-audit");
    assert_eq!(report["wit"], "hookauth:hooks/handler@0.1.0");
    assert!(
        report["events"]
            .as_array()
            .unwrap()
            .contains(&json!("after_register"))
    );
    assert!(
        report["imports"]
            .as_array()
            .unwrap()
            .contains(&json!("hookauth:hooks/host@0.1.0"))
    );

    let out = hookauth(dir.path())
        .args(["hooks", "run", "--event", "after_login"])
        .arg(&audit)
        .output()
        .unwrap();
    let report = success_json(&out);
    assert_eq!(report["result"], "ok");
    assert!(report["fuel_used"].as_u64().unwrap() > 0);
    // A Rust guest has one linear memory: its peak is the whole.
    let peak = report["peak_memory_bytes"].as_u64().unwrap();
    assert!(peak >= 64 << 10, "{report}");
    assert_eq!(report["linear_memory_bytes"].as_u64().unwrap(), peak);
    // The guest's own log line reached the log, with the host's context.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("audit: after_login") && log.contains("hook=\"10-audit\""),
        "{log}"
    );

    let sneaky = dir.path().join("20-sneaky.wasm");
    std::fs::write(&sneaky, crate::shared::fixture("forbidden-imports")).unwrap();
    let out = hookauth(dir.path())
        .args(["hooks", "check"])
        .arg(&sneaky)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wasi:http/incoming-handler"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
