//! Switching from fastapi-fullauth: the real library (0.18.0, in a Python venv) creates users in
//! its own database on SQLite or PostgreSQL (`tests/fixtures/fullauth/make_db.py`), the real
//! `hookauth import fullauth` binary imports that database, and the users sign in here with
//! their original passwords (argon2id, bcrypt, passlib pbkdf2-sha256), keep their flags, roles,
//! permissions, profile field, OAuth links and TOTP factor, and get their hashes upgraded.
//!
//! The venv's Python is `HOOKAUTH_TEST_FULLAUTH_PYTHON` (scripts/test builds it with
//! `scripts/fullauth-venv`). Without it the tests fail, unless `HOOKAUTH_TEST_FULLAUTH=off`
//! skips them explicitly (counted by scripts/test).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, record_skip, totp};
use crate::on_both_backends;
use crate::process::hookauth;
use hookauth::domain::TenantId;

on_both_backends!(
    a_fullauth_database_signs_in_here_with_its_passwords,
    jsonl_users_import_with_their_hashes,
);

fn fullauth_python() -> Option<String> {
    if std::env::var("HOOKAUTH_TEST_FULLAUTH").is_ok_and(|v| v == "off") {
        record_skip("HOOKAUTH_TEST_FULLAUTH=off");
        return None;
    }
    match std::env::var("HOOKAUTH_TEST_FULLAUTH_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => panic!(
            "this test needs fastapi-fullauth: run `bash scripts/fullauth-venv` and set \
             HOOKAUTH_TEST_FULLAUTH_PYTHON to the python it prints (scripts/test does both), or \
             skip explicitly with HOOKAUTH_TEST_FULLAUTH=off"
        ),
    }
}

/// The source database: a fresh one on the same backend, as the Python side spells it.
async fn source_database(backend: &Backend, dir: &Path) -> (String, String) {
    match backend {
        Backend::Sqlite => {
            let path = dir.join("fullauth.db");
            let url = format!("sqlite:///{}", path.display());
            (url.clone(), url)
        }
        Backend::Postgres(_) => {
            let (url, _) = backend.fresh_database().await;
            (url.replacen("postgres://", "postgresql://", 1), url)
        }
    }
}

fn run_import(app: &TestApp, dir: &Path, args: &[&str]) -> Value {
    let out = hookauth(dir)
        .env("HOOKAUTH_DATABASE_URL", &app.database_url)
        .env("HOOKAUTH_PROFILE_FIELDS__DISPLAY_NAME", "string")
        .args(["import"])
        .args(args)
        .arg("--json")
        .output()
        .expect("hookauth runs");
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    app.post("/login", json!({"email": email, "password": password}))
        .await
}

async fn stored_hash(app: &TestApp, email: &str) -> Option<String> {
    app.flows
        .store
        .find_user_by_email(&TenantId::default_tenant(), email)
        .await
        .unwrap()
        .unwrap()
        .hashed_password
}

async fn a_fullauth_database_signs_in_here_with_its_passwords(backend: Backend) {
    let Some(python) = fullauth_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (python_url, import_url) = source_database(&backend, dir.path()).await;
    let expected_path = dir.path().join("expected.json");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fullauth/make_db.py");
    let out = Command::new(&python)
        .arg(&fixture)
        .arg(&python_url)
        .arg(&expected_path)
        .output()
        .expect("the fullauth venv's python runs");
    assert!(
        out.status.success(),
        "make_db.py failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Value = serde_json::from_slice(&std::fs::read(&expected_path).unwrap()).unwrap();
    let users = expected["users"].as_array().unwrap();

    let app = TestApp::spawn_with(backend, Options::default()).await;
    // A dry run reports everything and writes nothing.
    let dry = run_import(
        &app,
        dir.path(),
        &["fullauth", "--from", &import_url, "--dry-run"],
    );
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["imported"], users.len(), "{dry}");
    let (status, _) = login(&app, "alice@example.com", "anything").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        app.flows
            .store
            .find_user_by_email(&TenantId::default_tenant(), "bob@example.com")
            .await
            .unwrap()
            .is_none(),
        "the dry run wrote nothing"
    );

    let report = run_import(&app, dir.path(), &["fullauth", "--from", &import_url]);
    assert_eq!(report["imported"], users.len(), "{report}");
    assert_eq!(report["skipped"], 0, "{report}");
    assert_eq!(report["roles"], 3, "{report}");
    // erin (OAuth only) and gina (garbage hash) have no usable password.
    assert_eq!(report["need_password_reset"], 2, "{report}");
    let remarks = report["entries"].to_string();
    assert!(remarks.contains("gina@example.com"), "{remarks}");
    assert!(remarks.contains("password hash not usable"), "{remarks}");

    // Everyone signs in with the password fastapi-fullauth knew, and keeps what they had.
    let carol_password = users
        .iter()
        .find(|u| u["email"] == "carol@example.com")
        .unwrap()["password"]
        .as_str()
        .unwrap();
    let mut carol_token = String::new();
    for user in users {
        let email = user["email"].as_str().unwrap();
        if email == "alice@example.com" {
            continue; // her TOTP factor came along: below
        }
        let Some(password) = user["password"].as_str() else {
            let (status, _) = login(&app, email, "whatever-it-was-1").await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{email} has no usable password"
            );
            continue;
        };
        let (status, body) = login(&app, email, password).await;
        if user["is_active"] == false {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{email} is inactive: {body}"
            );
            continue;
        }
        assert_eq!(
            status,
            StatusCode::OK,
            "{email} ({}): {body}",
            user["hash_scheme"]
        );
        let me = &body["user"];
        // Stored like a registration: the domain in IDNA ASCII form.
        let stored = email.replace("@bücher.de", "@xn--bcher-kva.de");
        assert_eq!(me["email"], stored.as_str());
        assert_eq!(me["is_verified"], user["is_verified"], "{email}");
        assert_eq!(me["is_superuser"], user["is_superuser"], "{email}");
        let mut roles: Vec<&str> = user["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        roles.sort();
        assert_eq!(me["roles"], json!(roles), "{email}");
        assert_eq!(me["display_name"], user["display_name"], "{email}");
        if email == "carol@example.com" {
            carol_token = body["access_token"].as_str().unwrap().to_owned();
        }
        let (status, links) = app
            .get("/oauth/accounts", body["access_token"].as_str().unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{links}");
        let providers: Vec<&str> = links
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["provider"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = user["oauth"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["provider"].as_str().unwrap())
            .collect();
        assert_eq!(providers, expected, "{email}");
    }
    // The role permissions came along (carol is the superuser).
    let (status, body) = app
        .get("/admin/role-permissions/editor", &carol_token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!(["posts:read", "posts:write"]));
    let (status, body) = app
        .get("/admin/role-permissions/auditor", &carol_token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!(["logs:read"]));

    // Imported hashes are replaced by the server's argon2id after a successful login.
    for email in ["bob@example.com", "carol@example.com", "frank@example.com"] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let hash = stored_hash(&app, email).await.unwrap();
            if hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{email} kept {hash}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let bob = users
        .iter()
        .find(|u| u["email"] == "bob@example.com")
        .unwrap();
    let (status, body) = login(&app, "bob@example.com", bob["password"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "after the upgrade: {body}");

    // alice had TOTP on in fastapi-fullauth: it is still on here, with the same secret.
    let alice = users
        .iter()
        .find(|u| u["email"] == "alice@example.com")
        .unwrap();
    let secret = alice["mfa"]["secret"].as_str().unwrap();
    let (status, body) = login(
        &app,
        "alice@example.com",
        alice["password"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mfa_token = body["mfa_token"].as_str().unwrap();
    // The step fastapi-fullauth last accepted stays used; take a later one.
    app.shift_clock(60_000);
    let (status, body) = app
        .post(
            "/mfa/verify",
            json!({"mfa_token": mfa_token, "code": totp(secret, app.server_now_secs())}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["display_name"], "Alice A.");

    // gina's hash was unusable: she gets in after a password reset, like any user.
    let (status, _) = app
        .post(
            "/password-reset/request",
            json!({"email": "gina@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reset = match app
        .recorder
        .wait_for_kind(hookauth::domain::EventKind::SendPasswordResetEmail, 1)
        .await
        .payload
    {
        hookauth::domain::EventPayload::SendPasswordResetEmail { token, .. } => token,
        other => panic!("{other:?}"),
    };
    let (status, body) = app
        .post(
            "/password-reset/confirm",
            json!({"token": reset, "new_password": "Fresh-Start-2031!"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = login(&app, "gina@example.com", "Fresh-Start-2031!").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Re-running changes nothing: everyone is reported as already there.
    let again = run_import(&app, dir.path(), &["fullauth", "--from", &import_url]);
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(again["skipped"], users.len(), "{again}");
    let hash = stored_hash(&app, "bob@example.com").await.unwrap();
    assert!(
        hash.starts_with("$argon2id$"),
        "the re-run left the upgraded hash: {hash}"
    );

    // A second tenant can take the same database: same users, new ids.
    let acme = TenantId::parse("acme").unwrap();
    app.flows.store.create_tenant(&acme, 0).await.unwrap();
    let copy = run_import(
        &app,
        dir.path(),
        &["fullauth", "--from", &import_url, "--tenant", "acme"],
    );
    assert_eq!(copy["imported"], users.len(), "{copy}");
    let (status, body) = app
        .tenant("acme")
        .post(
            "/login",
            json!({"email": "carol@example.com", "password": carol_password}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn jsonl_users_import_with_their_hashes(backend: Backend) {
    let Some(python) = fullauth_python() else {
        return;
    };
    // Real hashes, made now by the libraries fastapi-fullauth and passlib use.
    let out = Command::new(&python)
        .args([
            "-c",
            "import bcrypt, argon2; from passlib.hash import pbkdf2_sha256; \
             p='Imported-Pass-1'; \
             print(bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode().replace('$2b$','$2y$',1)); \
             print(pbkdf2_sha256.hash(p)); print(argon2.PasswordHasher(memory_cost=8192, time_cost=1).hash(p))",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let hashes: Vec<&str> = text.lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.jsonl");
    let lines = [
        json!({"role": "support", "permissions": ["tickets:read"]}).to_string(),
        json!({"email": "Yves@Example.com", "password_hash": hashes[0], "roles": ["support"], "is_verified": true}).to_string(),
        json!({"email": "zoe@example.com", "password_hash": hashes[1], "profile": {"display_name": "Zoë", "shoe_size": 38}}).to_string(),
        json!({"email": "xena@example.com", "password_hash": hashes[2], "created_at": "2020-05-01T10:00:00Z"}).to_string(),
        json!({"email": "nopass@example.com"}).to_string(),
        json!({"email": "not-an-email", "password_hash": hashes[0]}).to_string(),
        "{broken".to_owned(),
        json!({"email": "zoe@example.com", "password_hash": hashes[1]}).to_string(),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let app = TestApp::spawn(backend).await;
    let report = run_import(
        &app,
        dir.path(),
        &["users", "--jsonl", file.to_str().unwrap()],
    );
    assert_eq!(report["imported"], 4, "{report}");
    assert_eq!(report["skipped"], 3, "{report}");
    assert_eq!(report["ignored_fields"], json!(["shoe_size"]), "{report}");
    let entries = report["entries"].to_string();
    for expected in ["line 7", "invalid email", "earlier in the source"] {
        assert!(entries.contains(expected), "{expected}: {entries}");
    }
    for email in ["yves@example.com", "zoe@example.com", "xena@example.com"] {
        let (status, body) = login(&app, email, "Imported-Pass-1").await;
        assert_eq!(status, StatusCode::OK, "{email}: {body}");
        if email == "yves@example.com" {
            assert_eq!(body["user"]["roles"], json!(["support"]));
            assert_eq!(body["user"]["is_verified"], true);
        }
        if email == "zoe@example.com" {
            assert_eq!(body["user"]["display_name"], "Zoë");
        }
        let (status, _) = login(&app, email, "Imported-Pass-2").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let xena = app
        .flows
        .store
        .find_user_by_email(&TenantId::default_tenant(), "xena@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(xena.created_at, 1_588_327_200_000);
    let (status, _) = login(&app, "nopass@example.com", "Imported-Pass-1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An over-cap hash (bcrypt cost 31 would take days) is refused at import, not at login.
    let slow = dir.path().join("slow.jsonl");
    std::fs::write(
        &slow,
        json!({"email": "slow@example.com", "password_hash": format!("$2b$31${}", &hashes[0][7..])}).to_string(),
    )
    .unwrap();
    let report = run_import(
        &app,
        dir.path(),
        &["users", "--jsonl", slow.to_str().unwrap()],
    );
    assert_eq!(report["imported"], 1, "{report}");
    assert_eq!(report["need_password_reset"], 1, "{report}");
    assert!(
        report["entries"].to_string().contains("bcrypt_max_cost"),
        "{report}"
    );
}
