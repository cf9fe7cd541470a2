//! The CLI's commands that manage a running server through its API (`tenant create|list|delete
//! --server`, `hooks deploy|list|rm`): the real binary as client, the real binary as server,
//! a real component built from guest-examples, HTTP over loopback.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{PASSWORD, send};
use crate::process::{Process, hookauth};
use crate::shared::guest;

use crate::shared::OPERATOR;

/// The server binary on a fresh SQLite file, its stderr collected line by line.
struct Server {
    process: Process,
    url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A superuser of `tenant`, created with the local CLI on the server's own database.
    fn create_superuser(&self, tenant: &str, email: &str) {
        use std::io::Write;
        let mut create = hookauth(self._dir.path())
            .args([
                "user",
                "create-superuser",
                "--email",
                email,
                "--tenant",
                tenant,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(create.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        let out = create.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = hookauth(dir.path());
        cmd.env("HOOKAUTH_OPERATOR_TOKEN", OPERATOR)
            .args(["serve", "--bind", "127.0.0.1:0"]);
        let process = Process::spawn(cmd);
        Self {
            url: format!("http://{}", process.addr),
            process,
            _dir: dir,
        }
    }

    /// Waits until a log line contains every one of `parts`.
    async fn wait_for_log(&self, parts: &[&str]) -> String {
        self.process
            .wait_for_line(parts, Duration::from_secs(30))
            .await
    }
}

/// `hookauth ARGS --server URL` with `token` in HOOKAUTH_TOKEN.
fn cli(server: &Server, token: Option<&str>, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd: Command = hookauth(dir.path());
    cmd.env_remove("HOOKAUTH_TOKEN")
        .env_remove("HOOKAUTH_SERVER")
        .args(args)
        .args(["--server", &server.url]);
    if let Some(token) = token {
        cmd.env("HOOKAUTH_TOKEN", token);
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "command should have failed");
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// `hookauth hooks list --tenant TENANT` with `token`: the hooks, one JSON object a line.
fn list_hooks(server: &Server, token: &str, tenant: &str) -> Vec<Value> {
    json_lines(&stdout(&cli(
        server,
        Some(token),
        &["hooks", "list", "--tenant", tenant],
    )))
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_and_tenant_admins_manage_hooks_from_the_command_line() {
    let server = Server::start();
    let components = tempfile::tempdir().unwrap();
    let audit = components.path().join("audit.wasm");
    std::fs::write(&audit, guest("audit-log")).unwrap();
    let sha256 = format!("{:x}", Sha256::digest(std::fs::read(&audit).unwrap()));

    // Tenants are the operator's: no token, or a wrong one, is refused with the server's code.
    let err = failure(&cli(&server, None, &["tenant", "create", "acme"]));
    assert!(err.contains("HTTP 401"), "{err}");
    let err = failure(&cli(
        &server,
        Some("not-the-token"),
        &["tenant", "create", "acme"],
    ));
    assert!(
        err.contains("HTTP 401") || err.contains("HTTP 403"),
        "{err}"
    );
    assert!(!err.contains("not-the-token"), "the token is never echoed");
    let out = stdout(&cli(&server, Some(OPERATOR), &["tenant", "create", "acme"]));
    assert!(out.contains("tenant acme created"), "{out}");
    let tenants = stdout(&cli(&server, Some(OPERATOR), &["tenant", "list"]));
    assert!(tenants.contains("\"acme\""), "{tenants}");

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let manifest = components.path().join("audit.json");
    std::fs::write(&manifest, json!({"events": ["after_register"]}).to_string()).unwrap();

    // The operator deploys to acme; a second deploy of the same name replaces it.
    let deploy = |token: &str| {
        cli(
            &server,
            Some(token),
            &[
                "hooks",
                "deploy",
                audit.to_str().unwrap(),
                "--name",
                "audit",
                "--tenant",
                "acme",
                "--manifest",
                manifest.to_str().unwrap(),
            ],
        )
    };
    let out = deploy(OPERATOR);
    let hook: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(hook["name"], "audit");
    assert_eq!(hook["sha256"], sha256.as_str());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hook audit deployed in tenant acme"));
    let out = deploy(OPERATOR);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hook audit replaced in tenant acme"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let listed = list_hooks(&server, OPERATOR, "acme");
    let ours: Vec<&Value> = listed.iter().filter(|h| h["name"] == "audit").collect();
    assert_eq!(ours.len(), 1, "{listed:?}");
    assert_eq!(ours[0]["source"], "api");
    assert_eq!(ours[0]["sha256"], sha256.as_str());
    // The default tenant has none of acme's hooks.
    let default = list_hooks(&server, OPERATOR, "default");
    assert!(default.iter().all(|h| h["name"] != "audit"), "{default:?}");

    // The deployed hook runs for acme's events.
    let (status, body) = send(
        &http,
        reqwest::Method::POST,
        format!("{}/t/acme/api/v1/auth/register", server.url),
        None,
        Some(json!({"email": "ada@acme.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    server
        .wait_for_log(&["audit: after_register", "acme"])
        .await;

    // A file that is not a component is refused with the server's 422 and code; the hook
    // already deployed stays.
    let junk = components.path().join("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let err = failure(&cli(
        &server,
        Some(OPERATOR),
        &[
            "hooks",
            "deploy",
            junk.to_str().unwrap(),
            "--name",
            "audit",
            "--tenant",
            "acme",
        ],
    ));
    assert!(err.contains("HTTP 422"), "{err}");
    let listed = list_hooks(&server, OPERATOR, "acme");
    assert!(
        listed
            .iter()
            .any(|h| h["name"] == "audit" && h["sha256"] == sha256.as_str())
    );

    // A manifest that is not a JSON object is reported against the file, before any request.
    let bad = components.path().join("bad.json");
    std::fs::write(&bad, "[1, 2]").unwrap();
    let err = failure(&cli(
        &server,
        Some(OPERATOR),
        &[
            "hooks",
            "deploy",
            audit.to_str().unwrap(),
            "--name",
            "audit",
            "--tenant",
            "acme",
            "--manifest",
            bad.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("bad.json"), "{err}");

    // Removing: once, then it is gone.
    let out = stdout(&cli(
        &server,
        Some(OPERATOR),
        &["hooks", "rm", "audit", "--tenant", "acme"],
    ));
    assert!(out.contains("hook audit removed from tenant acme"));
    let err = failure(&cli(
        &server,
        Some(OPERATOR),
        &["hooks", "rm", "audit", "--tenant", "acme"],
    ));
    assert!(err.contains("HTTP 404"), "{err}");

    let out = stdout(&cli(&server, Some(OPERATOR), &["tenant", "delete", "acme"]));
    assert!(out.contains("tenant acme deleted"));
    let (status, _) = send(
        &http,
        reqwest::Method::POST,
        format!("{}/t/acme/api/v1/auth/login", server.url),
        None,
        Some(json!({"email": "ada@acme.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a deleted tenant is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_token_deploys_only_to_its_own_tenant_and_users_cannot() {
    let server = Server::start();
    for t in ["acme", "globex"] {
        stdout(&cli(&server, Some(OPERATOR), &["tenant", "create", t]));
    }
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |path: &str| format!("{}{path}", server.url);
    let login = |email: &'static str| {
        let http = http.clone();
        let url = url("/t/acme/api/v1/auth/login");
        async move {
            let (status, body) = send(
                &http,
                reqwest::Method::POST,
                url,
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    server.create_superuser("acme", "admin@acme.com");
    let admin = login("admin@acme.com").await;
    let (status, _) = send(
        &http,
        reqwest::Method::POST,
        url("/t/acme/api/v1/auth/register"),
        None,
        Some(json!({"email": "user@acme.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let plain_user = login("user@acme.com").await;

    let components = tempfile::tempdir().unwrap();
    let audit = components.path().join("audit.wasm");
    std::fs::write(&audit, guest("audit-log")).unwrap();
    let deploy = |token: &str, tenant: &str| {
        cli(
            &server,
            Some(token),
            &[
                "hooks",
                "deploy",
                audit.to_str().unwrap(),
                "--name",
                "audit",
                "--tenant",
                tenant,
            ],
        )
    };
    // A user without hooks:manage is refused on its own tenant and on another.
    let err = failure(&deploy(&plain_user, "acme"));
    assert!(err.contains("HTTP 403"), "{err}");
    let err = failure(&deploy(&plain_user, "globex"));
    assert!(
        err.contains("HTTP 401") || err.contains("HTTP 403"),
        "{err}"
    );
    // acme's superuser deploys to acme, and only there.
    let err = failure(&deploy(&admin, "globex"));
    assert!(
        err.contains("HTTP 401") || err.contains("HTTP 403"),
        "{err}"
    );
    let out = deploy(&admin, "acme");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = |t: &str| list_hooks(&server, OPERATOR, t);
    assert!(listed("acme").iter().any(|h| h["name"] == "audit"));
    assert!(listed("globex").iter().all(|h| h["name"] != "audit"));
    // The admin's own token lists its tenant's hooks too.
    let own = list_hooks(&server, &admin, "acme");
    assert!(own.iter().any(|h| h["name"] == "audit"));
}
