//! The real `hookauth serve`: where it caches compiled hooks by default, and how it answers a
//! tenant deploying a compile bomb.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::compile_limits::compile_bomb;
use crate::process::{Process, hookauth};
use crate::shared::OPERATOR;
use crate::support::fixture;

/// `hookauth serve` in `dir` on its own SQLite file, returned once it is ready (hooks loaded),
/// since the management API answers 503 `not_ready` before that.
fn serve(dir: &Path, env: &[(&str, &str)]) -> Process {
    let mut cmd = hookauth(dir);
    cmd.env(
        "HOOKAUTH_DATABASE_URL",
        format!("sqlite://{}", dir.join("hookauth.db").display()),
    )
    .env("HOOKAUTH_OPERATOR_TOKEN", OPERATOR);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["serve", "--bind", "127.0.0.1:0"]);
    Process::spawn(cmd)
}

#[tokio::test]
async fn the_server_caches_outside_the_hooks_directory_and_refuses_a_compile_bomb_with_422() {
    let work = tempfile::tempdir().unwrap();
    let hooks = work.path().join("hooks");
    let xdg = work.path().join("xdg-cache");
    std::fs::create_dir(&hooks).unwrap();
    std::fs::write(hooks.join("10-ok.wasm"), fixture("log-ok")).unwrap();
    let server = serve(
        work.path(),
        &[
            ("HOOKAUTH_HOOKS__DIR", hooks.to_str().unwrap()),
            ("XDG_CACHE_HOME", xdg.to_str().unwrap()),
            ("HOOKAUTH_TENANT_HOOKS__COMPILE_TIMEOUT_MS", "100"),
        ],
    );

    // A tenant deploys a component that compiles for seconds: refused at the ceiling, as a 4xx
    // with a stable code naming the hook and the limit.
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let created = http
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(OPERATOR)
        .json(&json!({"id": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let form = reqwest::multipart::Form::new().part(
        "component",
        reqwest::multipart::Part::bytes(compile_bomb(2000, 2000))
            .file_name("bomb.wasm")
            .mime_str("application/wasm")
            .unwrap(),
    );
    let response = http
        .put(format!("{base}/t/acme/api/v1/hooks/bomb"))
        .bearer_auth(OPERATOR)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "compile_timeout", "{body}");
    let detail = body.to_string();
    assert!(
        detail.contains("bomb") && detail.contains("compile_timeout_ms"),
        "{body}"
    );

    // The platform hook's artifact is in $XDG_CACHE_HOME/hookauth, nothing in the hooks dir.
    let root = xdg.join("hookauth");
    let started = Instant::now();
    let artifact = loop {
        let found = std::fs::read_dir(&root).ok().and_then(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        });
        if let Some(found) = found {
            break found;
        }
        // A fail-safe, not a measurement: hooks may load after the listener binds.
        assert!(started.elapsed() < Duration::from_secs(120), "no artifact");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(artifact.starts_with(&root));
    let entries: Vec<_> = std::fs::read_dir(&hooks)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, [std::ffi::OsString::from("10-ok.wasm")]);
}
