//! Gate hooks (WIT 0.2.0 `gate`) in the running server, on both backends: a real component
//! (tests/fixtures/gate-probe, which exports 0.1.0's `handler` and 0.2.0's `gate`) in the
//! hooks directory, driven over HTTP. The probe's answers are chosen by the input; see its
//! src/lib.rs.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hookauth::domain::{Email, EventKind, Password, RoleName, TenantId};
use hookauth::flows;
use hookauth::store::{DecisionQuery, GateDecisionRecord};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, TestApp, assert_unauthorized, send};
use crate::on_both_backends;
use crate::shared::{OPERATOR, gate_probe};

on_both_backends!(
    a_deny_stops_the_sign_up_and_creates_nothing,
    allowed_changes_reach_the_new_account_and_later_gates,
    a_failing_gate_denies_unless_its_on_error_allows,
    before_login_and_check_password_decide_with_the_password_proven_or_new,
    token_claims_reach_the_access_token_and_reserved_ones_never_do,
    every_decision_is_audited_and_queryable,
    a_tenant_s_gates_decide_only_for_that_tenant,
);

/// Generous: these tests are about decisions, not budgets (a loaded CI machine must not turn
/// an allow into a timeout). `spin` is the one case meant to time out.
const ROOMY: &str = "gate_timeout_ms = 5000\ngate_fuel = 50_000_000\n";

/// A hooks directory: the probe as `10-first` (and, with `second`, again as `20-second`),
/// each with `extra` in its hooks.toml entry (and [`ROOMY`] budgets unless `extra` sets its
/// own).
fn hooks_dir(first: &str, second: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let probe = gate_probe();
    let mut manifest = String::new();
    let mut add = |name: &str, extra: &str| {
        std::fs::write(dir.path().join(format!("{name}.wasm")), &probe).unwrap();
        let budget = if extra.contains("gate_timeout_ms") {
            ""
        } else {
            ROOMY
        };
        manifest.push_str(&format!(
            "[hooks.{name}]\n{budget}config = {{ name = \"{name}\" }}\n{extra}\n\n"
        ));
    };
    add("10-first", first);
    if let Some(extra) = second {
        add("20-second", extra);
    }
    std::fs::write(dir.path().join("hooks.toml"), manifest).unwrap();
    dir
}

async fn spawn(backend: Backend, dir: &Path) -> TestApp {
    TestApp::spawn_with(
        backend,
        Options::default()
            .env("HOOKAUTH_HOOKS__DIR", dir.to_str().unwrap())
            .env("HOOKAUTH_OPERATOR_TOKEN", OPERATOR),
    )
    .await
}

async fn register(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    app.post("/register", json!({"email": email, "password": password}))
        .await
}

fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn assert_denied(status: StatusCode, body: &Value, hook_code: Option<&str>) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "denied_by_hook", "{body}");
    assert_eq!(body["hook_code"].as_str(), hook_code, "{body}");
}

/// What an accepted sign-up answers: the server hides whether an account was created
/// (`prevent_registration_enumeration`, on by default), so it is 202 either way.
const SIGNED_UP: StatusCode = StatusCode::ACCEPTED;

/// Decisions reach the audit table through a background writer: wait for `n` of them.
async fn decisions(app: &TestApp, n: usize) -> Vec<GateDecisionRecord> {
    let query = DecisionQuery {
        limit: 1000,
        ..DecisionQuery::default()
    };
    for _ in 0..200 {
        let found = app.flows.gate_decisions(&query).await.unwrap();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} gate decisions were stored");
}

/// The first stored decision that `matches` (waiting for the audit writer's batches).
async fn decision_where(
    app: &TestApp,
    what: &str,
    matches: impl Fn(&GateDecisionRecord) -> bool,
) -> GateDecisionRecord {
    for _ in 0..200 {
        if let Some(found) = decisions(app, 0).await.into_iter().find(|d| matches(d)) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} was never audited");
}

async fn a_deny_stops_the_sign_up_and_creates_nothing(backend: Backend) {
    let dir = hooks_dir("", None);
    let app = spawn(backend, dir.path()).await;

    let (status, body) = register(&app, "deny@example.com", PASSWORD).await;
    assert_denied(status, &body, Some("no_entry"));
    // The hook's message, without the bidi override and the newline it carried.
    assert_eq!(body["detail"], "Probe says no to this sign-up", "{body}");
    let (status, body) = app
        .post(
            "/login",
            json!({"email": "deny@example.com", "password": PASSWORD}),
        )
        .await;
    assert_unauthorized(status, &body);

    // The same answer whether or not the address has an account (created here past the
    // gates, as the CLI does).
    flows::create_superuser(
        &app.flows,
        &TenantId::default_tenant(),
        Email::parse("deny@taken.example.com").unwrap(),
        Password::new(PASSWORD.into()),
    )
    .await
    .unwrap();
    let taken = register(&app, "deny@taken.example.com", PASSWORD).await;
    let free = register(&app, "deny@free.example.com", PASSWORD).await;
    assert_eq!(taken, free);

    // Allowed sign-ups work, and only they were announced.
    assert_eq!(
        register(&app, "ada@example.com", PASSWORD).await.0,
        SIGNED_UP
    );
    app.settle().await;
    assert_eq!(app.recorder.count_of(EventKind::AfterRegister), 1);
}

async fn allowed_changes_reach_the_new_account_and_later_gates(backend: Backend) {
    let dir = hooks_dir("", Some(""));
    let app = spawn(backend, dir.path()).await;
    // Gates assign only existing roles: make `staff` one.
    let root = flows::create_superuser(
        &app.flows,
        &TenantId::default_tenant(),
        Email::parse("root@example.com").unwrap(),
        Password::new(PASSWORD.into()),
    )
    .await
    .unwrap();
    app.flows
        .store
        .assign_role(
            &TenantId::default_tenant(),
            &root.id,
            &RoleName::parse("staff").unwrap(),
        )
        .await
        .unwrap();

    let (status, body) = register(&app, "changes@example.com", PASSWORD).await;
    assert_eq!(status, SIGNED_UP, "{body}");
    let token = app.access_token("changes@example.com").await;
    let (_, me) = app.get("/me", &token).await;
    assert_eq!(
        (me["display_name"].clone(), me["roles"].clone()),
        (json!("Probe"), json!(["staff"]))
    );
    assert_eq!(claims(&token)["roles"], json!(["staff"]));

    // `chain`: the first probe sets display_name, the second sees it and allows. Without
    // visibility the second would set it again, which is allowed too: so check the audit.
    let (status, body) = register(&app, "chain@example.com", PASSWORD).await;
    assert_eq!(status, SIGNED_UP, "{body}");
    let token = app.access_token("chain@example.com").await;
    assert_eq!(app.get("/me", &token).await.1["display_name"], "Probe");
    // The audit is written in batches: wait for each of the two decisions themselves.
    for (hook, decision) in [("10-first", "allow_with_changes"), ("20-second", "allow")] {
        let found = decision_where(&app, &format!("{hook}'s decision about chain@"), |d| {
            d.subject == "chain@example.com" && d.point == "before_register" && d.hook == hook
        })
        .await;
        assert_eq!(found.decision, decision, "{found:?}");
    }

    // Changes the server cannot apply are bad answers: fail closed by default.
    for email in [
        "badrole@example.com",
        "badfield@example.com",
        "bigfield@example.com",
    ] {
        let (status, body) = register(&app, email, PASSWORD).await;
        assert_denied(status, &body, Some("hook_failed"));
        assert_eq!(body["detail"], "The request was denied");
    }
}

async fn a_failing_gate_denies_unless_its_on_error_allows(backend: Backend) {
    // The first probe fails closed (the default), the second open; `spin` runs out of its
    // small budget.
    let closed = hooks_dir("gate_timeout_ms = 200\ngate_fuel = 1_000_000", None);
    let app = spawn(backend.clone(), closed.path()).await;
    for email in ["trap@example.com", "spin@example.com"] {
        let (status, body) = register(&app, email, PASSWORD).await;
        assert_denied(status, &body, Some("hook_failed"));
    }
    let audit = decisions(&app, 2).await;
    let labels: Vec<&str> = audit.iter().filter_map(|d| d.failure.as_deref()).collect();
    assert!(labels.iter().any(|f| f.starts_with("panic")), "{labels:?}");
    assert!(
        labels
            .iter()
            .any(|f| f.starts_with("out_of_fuel") || f.starts_with("timeout")),
        "{labels:?}"
    );
    assert!(audit.iter().all(|d| d.decision == "failed_deny"));
    app.stop().await;

    let open = hooks_dir(
        "on_error = \"allow\"\ngate_timeout_ms = 200\ngate_fuel = 1_000_000",
        None,
    );
    let app = spawn(backend, open.path()).await;
    for email in ["trap@example.com", "spin@example.com"] {
        let (status, body) = register(&app, email, PASSWORD).await;
        assert_eq!(status, SIGNED_UP, "{email}: {body}");
    }
    // Each sign-up went on past the failed gate: to check-password, then to the account.
    let audit = decisions(&app, 4).await;
    let register: Vec<&str> = audit
        .iter()
        .filter(|d| d.point == "before_register")
        .map(|d| d.decision.as_str())
        .collect();
    assert_eq!(register, ["failed_allow", "failed_allow"], "{audit:?}");
}

async fn before_login_and_check_password_decide_with_the_password_proven_or_new(backend: Backend) {
    let dir = hooks_dir("", None);
    let app = spawn(backend, dir.path()).await;

    assert_eq!(
        register(&app, "blocked@example.com", PASSWORD).await.0,
        SIGNED_UP
    );
    let (status, body) = app
        .post(
            "/login",
            json!({"email": "blocked@example.com", "password": PASSWORD}),
        )
        .await;
    assert_denied(status, &body, None);
    assert_eq!(body["detail"], "Sign-in is closed for this account");
    // A wrong password never reaches the gate: it is the usual credentials error.
    let (status, body) = app
        .post(
            "/login",
            json!({"email": "blocked@example.com", "password": "wrong-password-1"}),
        )
        .await;
    assert_unauthorized(status, &body);
    // A denied login starts no session and does not count towards the lockout.
    for _ in 0..6 {
        let (status, _) = app
            .post(
                "/login",
                json!({"email": "blocked@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    // check-password at register and at change.
    let (status, body) = register(&app, "ada@example.com", "breached-password-1").await;
    assert_denied(status, &body, None);
    assert_eq!(body["detail"], "This password appeared in a breach");
    let token = app.access_token("ada@example.com").await;
    let (status, body) = app
        .request(
            Method::POST,
            "/change-password",
            Some(&token),
            Some(json!({"current_password": PASSWORD, "new_password": "breached-password-1"})),
        )
        .await;
    assert_denied(status, &body, None);
    // The old password still works.
    let (status, _) = app
        .post(
            "/login",
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn token_claims_reach_the_access_token_and_reserved_ones_never_do(backend: Backend) {
    let dir = hooks_dir("", Some(""));
    let app = spawn(backend, dir.path()).await;

    let login = app.login("ada@example.com").await;
    let token = login["access_token"].as_str().unwrap();
    let c = claims(token);
    // Both probes answered; the later one wins a name both set.
    assert_eq!(c["extra"]["plan"], "pro", "{c}");
    assert_eq!(c["extra"]["grant"], "login", "{c}");
    assert_eq!(c["extra"]["from"], "20-second", "{c}");
    let (status, me) = app.get("/me", token).await;
    assert_eq!(status, StatusCode::OK, "{me}");

    let (status, pair) = app
        .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let c = claims(pair["access_token"].as_str().unwrap());
    assert_eq!(c["extra"]["grant"], "refresh", "{c}");

    // A reserved claim or claims over the cap are bad answers: the login is refused (fail
    // closed), no token carries them, and no session was started.
    for email in [
        "reserved@example.com",
        "huge@example.com",
        "claimerr@example.com",
    ] {
        assert_eq!(register(&app, email, PASSWORD).await.0, SIGNED_UP);
        let (status, body) = app
            .post("/login", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_denied(status, &body, Some("hook_failed"));
    }
    // Audit records are written in batches: wait for this one, not just for any.
    let reserved = decision_where(&app, "the reserved claim", |d| {
        d.failure.as_deref().is_some_and(|f| f.contains("reserved"))
    })
    .await;
    assert_eq!(reserved.point, "token_claims");
}

async fn every_decision_is_audited_and_queryable(backend: Backend) {
    let dir = hooks_dir("", None);
    let app = spawn(backend, dir.path()).await;
    let (status, _) = register(&app, "deny@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        register(&app, "ada@example.com", PASSWORD).await.0,
        SIGNED_UP
    );
    // before_register + check_password for ada, before_register for deny.
    let audit = decisions(&app, 3).await;
    let deny = audit.iter().find(|d| d.decision == "deny").unwrap();
    assert_eq!(
        (
            deny.hook.as_str(),
            deny.point.as_str(),
            deny.subject.as_str()
        ),
        ("10-first", "before_register", "deny@example.com")
    );
    assert_eq!(deny.hook_code.as_deref(), Some("no_entry"));
    assert!(
        deny.duration_us > 0 && !deny.request_id.is_empty(),
        "{deny:?}"
    );

    // The same through the hooks API.
    let (status, listed) = send(
        app.http(),
        Method::GET,
        format!("http://{}/api/v1/hook-decisions?decision=deny", app.addr),
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["subject"], "deny@example.com");
}

async fn a_tenant_s_gates_decide_only_for_that_tenant(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // A platform gate for acme only, failing open, ahead of acme's own gate.
    std::fs::write(dir.path().join("10-platform.wasm"), gate_probe()).unwrap();
    std::fs::write(
        dir.path().join("hooks.toml"),
        format!("[hooks.10-platform]\n{ROOMY}tenants = [\"acme\"]\non_error = \"allow\"\n"),
    )
    .unwrap();
    let acme = dir.path().join("tenants/acme");
    std::fs::create_dir_all(&acme).unwrap();
    std::fs::write(acme.join("probe.wasm"), gate_probe()).unwrap();
    std::fs::write(acme.join("hooks.toml"), format!("[hooks.probe]\n{ROOMY}")).unwrap();
    // The tenant must exist before its hooks directory is read.
    let first = TestApp::spawn(backend.clone()).await;
    first
        .flows
        .store
        .create_tenant(&TenantId::parse("acme").unwrap(), 0)
        .await
        .unwrap();
    let database = first.database();
    first.stop().await;
    let app = TestApp::spawn_with(
        backend,
        Options {
            database: Some(database),
            ..Options::default()
                .env("HOOKAUTH_HOOKS__DIR", dir.path().to_str().unwrap())
                .env("HOOKAUTH_OPERATOR_TOKEN", OPERATOR)
        },
    )
    .await;

    let body = json!({"email": "deny@example.com", "password": PASSWORD});
    let (status, denied) = app.tenant("acme").post("/register", body.clone()).await;
    assert_denied(status, &denied, Some("no_entry"));
    let (status, created) = app.post("/register", body).await;
    assert_eq!(status, SIGNED_UP, "{created}");

    // Both gates trap: the platform one is skipped (on_error allow), acme's denies. Acme reads
    // both decisions, but why the platform gate failed is the operator's to read.
    let trap = json!({"email": "trap@example.com", "password": PASSWORD});
    let (status, denied) = app.tenant("acme").post("/register", trap).await;
    assert_denied(status, &denied, Some("hook_failed"));
    let url = format!("http://{}/t/acme/api/v1/hook-decisions", app.addr);
    let mut listed = Vec::new();
    for _ in 0..200 {
        let (status, body) = send(app.http(), Method::GET, url.clone(), Some(OPERATOR), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        listed = body.as_array().unwrap().clone();
        if listed
            .iter()
            .filter(|d| d["subject"] == "trap@example.com")
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let failure = |hook: &str| {
        listed
            .iter()
            .find(|d| d["subject"] == "trap@example.com" && d["hook"] == hook)
            .map(|d| d["failure"].clone())
    };
    assert_eq!(
        failure("10-platform"),
        Some(json!("(a platform hook; reason withheld)")),
        "{listed:?}"
    );
    let own = failure("probe").expect("acme's own decision is listed");
    assert!(own.as_str().unwrap().starts_with("panic"), "{own}");
}
