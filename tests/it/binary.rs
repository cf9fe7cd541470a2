//! The `hookauth` binary itself: start-up, readiness line, graceful shutdown, the admin
//! subcommands and configuration errors.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, send};
use crate::process::{Process, hookauth};

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

    let mut cmd = hookauth(dir.path());
    cmd.args(["serve", "--bind", "127.0.0.1:0"]);
    // Reads the log on its own thread, with a deadline for the address line: a server that
    // hangs before announcing itself fails the test instead of blocking it.
    let mut server = Process::spawn(cmd);
    let addr = server.addr.clone();
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

    // A deadline for a hang, not a speed requirement: graceful shutdown has nothing to wait for.
    let status = server.terminate(Duration::from_secs(60));
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

/// `hookauth hooks run --event EVENT FILE` in `dir`.
fn hooks_run(dir: &std::path::Path, event: &str, file: &std::path::Path) -> std::process::Output {
    hookauth(dir)
        .args(["hooks", "run", "--event", event])
        .arg(file)
        .output()
        .unwrap()
}

#[tokio::test]
async fn hooks_decisions_lists_what_the_gates_of_a_running_server_decided() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    std::fs::write(hooks.join("probe.wasm"), crate::shared::gate_probe()).unwrap();
    std::fs::write(
        hooks.join("hooks.toml"),
        "[hooks.probe]\ngate_timeout_ms = 5000\n",
    )
    .unwrap();
    let mut cmd = hookauth(dir.path());
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--hooks"])
        .arg(&hooks);
    let mut server = Process::spawn(cmd);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (status, body) = send(
        &http,
        reqwest::Method::POST,
        format!("http://{}/api/v1/auth/register", server.addr),
        None,
        Some(json!({"email": "deny@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A graceful stop drains the audit queue into the database.
    assert!(server.terminate(Duration::from_secs(60)).success());

    let out = hookauth(dir.path())
        .args(["hooks", "decisions", "--decision", "deny"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (
            &lines[0]["hook"],
            &lines[0]["point"],
            &lines[0]["subject"],
            &lines[0]["hook_code"]
        ),
        (
            &json!("probe"),
            &json!("before_register"),
            &json!("deny@example.com"),
            &json!("no_entry")
        )
    );
}

#[test]
fn hooks_check_and_run_show_a_gate_s_points_and_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.wasm");
    std::fs::write(&probe, crate::shared::gate_probe()).unwrap();
    let out = hookauth(dir.path())
        .args(["hooks", "check"])
        .arg(&probe)
        .output()
        .unwrap();
    let report = success_json(&out);
    assert_eq!(report["gate"], "hookauth:hooks/gate@0.2.0", "{report}");
    assert_eq!(report["wit"], "hookauth:hooks/handler@0.1.0", "{report}");
    assert_eq!(
        report["decision_points"],
        json!([
            "before_register",
            "before_login",
            "check_password",
            "token_claims"
        ])
    );
    assert_eq!(
        (
            report["gate_timeout_ms"].as_u64(),
            report["on_error"].as_str()
        ),
        (Some(50), Some("deny"))
    );

    // A decision point instead of an event: the gate's raw decision.
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, r#"{"email": "deny@example.com"}"#).unwrap();
    let out = hookauth(dir.path())
        .args(["hooks", "run", "--event", "before_register", "--payload"])
        .arg(&payload)
        .arg(&probe)
        .output()
        .unwrap();
    let report = success_json(&out);
    assert_eq!(report["result"], "ok", "{report}");
    assert_eq!(report["decision"]["decision"], "deny", "{report}");
    assert_eq!(report["decision"]["code"], "no_entry", "{report}");
    let out = hooks_run(dir.path(), "token_claims", &probe);
    let report = success_json(&out);
    assert_eq!(report["decision"]["claims"]["plan"], "pro", "{report}");
    // A hook that is not a gate for the point says so.
    let audit = dir.path().join("10-audit.wasm");
    std::fs::write(&audit, crate::shared::guest("audit-log")).unwrap();
    let out = hooks_run(dir.path(), "before_login", &audit);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a gate for before_login"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

    let out = hooks_run(dir.path(), "after_login", &audit);
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

    // What the sandbox cut is in the report too: a hook flooding the log (1,000 lines of
    // 6,001 bytes) has all but the lines that fit the default 64 KiB budget counted as dropped.
    let flood = dir.path().join("30-flood.wasm");
    std::fs::write(&flood, crate::shared::fixture("log-flood")).unwrap();
    let out = hooks_run(dir.path(), "after_register", &flood);
    let report = success_json(&out);
    assert_eq!(report["result"], "ok", "{report}");
    assert_eq!(
        report["log_dropped_lines"].as_u64().unwrap(),
        1000 - 65536 / 6001,
        "{report}"
    );
    for counter in [
        "outbound_refused_total",
        "outbound_limited",
        "stdio_dropped_lines",
        "error_bytes_cut",
    ] {
        assert_eq!(report[counter], 0, "{counter}: {report}");
    }

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

/// `log_format = "json"`: every line the server writes is one JSON object, and a hook's log
/// line carries the hook, the tenant and the id of the request that caused its event.
#[tokio::test]
async fn json_logs_carry_the_request_id_into_hook_lines() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(
        hooks.join("10-audit.wasm"),
        crate::shared::guest("audit-log"),
    )
    .unwrap();
    let mut cmd = hookauth(dir.path());
    cmd.env("HOOKAUTH_LOG_FORMAT", "json")
        .arg("serve")
        .args(["--bind", "127.0.0.1:0", "--hooks"])
        .arg(&hooks);
    let mut server = Process::spawn(cmd);
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/auth/register", server.addr))
        .header("X-Request-Id", "req-json-logs-1")
        .json(&json!({"email": "json@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let line = server
        .wait_for_line(
            &["audit: after_register", "req-json-logs-1"],
            Duration::from_secs(60),
        )
        .await;
    let record: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(record["fields"]["hook"], "10-audit", "{record}");
    assert_eq!(record["fields"]["tenant"], "default");
    assert_eq!(record["fields"]["event"], "after_register");
    assert_eq!(record["fields"]["request_id"], "req-json-logs-1");
    server.terminate(Duration::from_secs(10));
    for line in server.log().lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
    }
}

/// A `HOOKAUTH_LOG` that does not parse is named in a warning and the default filter applies
/// (the server still starts and logs at info), instead of silently logging nothing or
/// everything; a blank one is the default without a warning.
#[tokio::test]
async fn a_bad_log_filter_is_reported_and_the_default_applies() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = hookauth(dir.path());
    cmd.env("HOOKAUTH_LOG", "hookauth=loud")
        .arg("serve")
        .args(["--bind", "127.0.0.1:0"]);
    let mut server = Process::spawn(cmd);
    let line = server
        .wait_for_line(
            &["ignored HOOKAUTH_LOG", "hookauth=loud"],
            Duration::from_secs(30),
        )
        .await;
    assert!(line.contains("WARN"), "{line}");
    server.terminate(Duration::from_secs(10));
    assert!(server.log().contains(" INFO "), "{}", server.log());

    // Blank (an empty variable in a compose file) is the default too, not silence: the server
    // is only found through its INFO "listening on" line.
    let mut cmd = hookauth(dir.path());
    cmd.env("HOOKAUTH_LOG", " ")
        .arg("serve")
        .args(["--bind", "127.0.0.1:0"]);
    let mut server = Process::spawn(cmd);
    server.terminate(Duration::from_secs(10));
    assert!(
        !server.log().contains("ignored HOOKAUTH_LOG"),
        "{}",
        server.log()
    );
}

/// `hookauth dev mailbox` receives what the example welcome hook sends, so a first run shows
/// the welcome and verification emails (the verification link clickable, anything a hook sent
/// shown as text), and keeps a retried delivery once.
#[tokio::test]
async fn the_dev_mailbox_shows_the_example_hooks_emails() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut mailbox = hookauth(dir.path())
        .args(["dev", "mailbox", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(mailbox.stderr.take().unwrap()).lines();
    let mailbox_addr = loop {
        let line = lines
            .next()
            .expect("the mailbox prints its address")
            .unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    let hooks = dir.path().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(
        hooks.join("20-welcome.wasm"),
        crate::shared::guest("welcome-email"),
    )
    .unwrap();
    std::fs::write(
        hooks.join("hooks.toml"),
        format!(
            "[hooks.20-welcome]\nallowed_hosts = [\"{mailbox_addr}\"]\n\
             config = {{ url = \"http://{mailbox_addr}/send\", \
             verify_url = \"http://localhost:3000/verify\" }}\n\
             secrets = {{ api_key = \"MAILER_API_KEY\" }}\n"
        ),
    )
    .unwrap();
    let mut cmd = hookauth(dir.path());
    cmd.env("MAILER_API_KEY", "example-key")
        .arg("serve")
        .args(["--bind", "127.0.0.1:0", "--hooks"])
        .arg(&hooks);
    let mut server = Process::spawn(cmd);
    let http = reqwest::Client::new();
    let base = format!("http://{}/api/v1/auth", server.addr);
    let email = "mailbox<b>@example.com";
    let creds = json!({"email": "first.user@example.com", "password": PASSWORD});
    let (status, _) = send(
        &http,
        reqwest::Method::POST,
        format!("{base}/register"),
        None,
        Some(creds.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, login) = send(
        &http,
        reqwest::Method::POST,
        format!("{base}/login"),
        None,
        Some(creds),
    )
    .await;
    let token = login["access_token"].as_str().unwrap();
    let (status, _) = send(
        &http,
        reqwest::Method::POST,
        format!("{base}/verify-email/request"),
        Some(token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let messages = {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let messages: serde_json::Value = http
                .get(format!("http://{mailbox_addr}/messages"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if messages.as_array().unwrap().len() >= 2 {
                break messages;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{messages}\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let templates: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"]["template"].as_str().unwrap())
        .collect();
    assert_eq!(templates, ["verify-email", "welcome"], "newest first");
    let link = messages[0]["body"]["link"].as_str().unwrap();
    assert!(
        link.starts_with("http://localhost:3000/verify?token="),
        "{link}"
    );
    let page = http
        .get(format!("http://{mailbox_addr}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("<a href=\"{link}\">")), "{page}");
    assert!(page.contains("first.user@example.com"));

    // A retry of the same delivery is kept once; markup a hook sent stays text.
    for _ in 0..2 {
        let answer = http
            .post(format!("http://{mailbox_addr}/send"))
            .header("Idempotency-Key", "event-1")
            .json(&json!({"to": email, "subject": "<script>x</script>", "link": "javascript:x"}))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }
    let page = http
        .get(format!("http://{mailbox_addr}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("&lt;script&gt;").count(), 1, "{page}");
    assert!(!page.contains("<script>") && !page.contains("href=\"javascript"));
    assert!(page.contains("mailbox&lt;b&gt;@example.com"));

    server.terminate(Duration::from_secs(10));
    let _ = mailbox.kill();
    let _ = mailbox.wait();
}
