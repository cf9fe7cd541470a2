//! Account lockout (default policy: 5 failures within 15 minutes lock for 15 minutes): the
//! boundaries, the window, tenants, parallel guesses, the other routes that check a password,
//! and what lifts a lock.

use hookauth::domain::{EventKind, EventPayload, TenantId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, TestApp, assert_unauthorized, send};
use crate::on_both_backends;

on_both_backends!(
    n_minus_one_failures_leave_the_account_usable,
    n_failures_lock_the_account_before_any_verification,
    failures_outside_the_window_start_a_new_count,
    a_lock_expires_after_its_duration,
    lockout_counts_per_tenant,
    parallel_guesses_reach_the_hash_at_most_max_attempts_times,
    parallel_correct_logins_all_succeed,
    change_password_and_delete_me_count_towards_the_lockout,
    a_locked_account_cannot_be_guessed_through_change_password_or_delete_me,
    a_password_reset_lifts_the_lock,
    guesses_during_a_lock_do_not_extend_it,
);

const MINUTE: i64 = 60_000;

async fn wrong_login(app: &TestApp, email: &str) {
    let (status, body) = app
        .post(
            "/login",
            json!({"email": email, "password": "wrong-password"}),
        )
        .await;
    assert_unauthorized(status, &body);
}

async fn right_login(app: &TestApp, email: &str) -> (StatusCode, Value) {
    app.post("/login", json!({"email": email, "password": PASSWORD}))
        .await
}

/// (attempts counted, locked) as stored for the default tenant.
async fn attempts(app: &TestApp, email: &str) -> (u32, bool) {
    app.flows
        .store
        .login_attempts(
            &TenantId::default_tenant(),
            email,
            app.flows.clock.now_millis(),
        )
        .await
        .unwrap()
}

async fn n_minus_one_failures_leave_the_account_usable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "four@example.com";
    app.register(email).await;
    for _ in 0..4 {
        wrong_login(&app, email).await;
    }
    assert_eq!(attempts(&app, email).await, (4, false));
    let (status, body) = right_login(&app, email).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A success starts the count again: four more failures still do not lock.
    assert_eq!(attempts(&app, email).await, (0, false));
    for _ in 0..4 {
        wrong_login(&app, email).await;
    }
    let (status, body) = right_login(&app, email).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn n_failures_lock_the_account_before_any_verification(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "five@example.com";
    app.register(email).await;
    for _ in 0..5 {
        wrong_login(&app, email).await;
    }
    assert_eq!(attempts(&app, email).await, (5, true));
    let checks = app.flows.password_checks();
    let (status, body) = right_login(&app, email).await;
    assert_unauthorized(status, &body);
    assert_eq!(
        app.flows.password_checks(),
        checks,
        "a locked account's hash is not consulted"
    );
    // Unknown addresses lock the same way, so a lock tells nothing about existence.
    for _ in 0..5 {
        wrong_login(&app, "nobody@example.com").await;
    }
    assert_eq!(attempts(&app, "nobody@example.com").await, (5, true));
}

async fn failures_outside_the_window_start_a_new_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "window@example.com";
    app.register(email).await;
    for _ in 0..4 {
        wrong_login(&app, email).await;
    }
    app.shift_clock(16 * MINUTE);
    for _ in 0..4 {
        wrong_login(&app, email).await;
    }
    // Eight failures, but never five within one window.
    assert_eq!(attempts(&app, email).await, (4, false));
    let (status, body) = right_login(&app, email).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_lock_expires_after_its_duration(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "expire@example.com";
    app.register(email).await;
    for _ in 0..5 {
        wrong_login(&app, email).await;
    }
    app.shift_clock(14 * MINUTE);
    let (status, body) = right_login(&app, email).await;
    assert_unauthorized(status, &body);
    app.shift_clock(15 * MINUTE + 1);
    let (status, body) = right_login(&app, email).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn lockout_counts_per_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in ["acme", "globex"] {
        app.flows
            .store
            .create_tenant(&TenantId::parse(name).unwrap(), 0)
            .await
            .unwrap();
    }
    let email = "same@example.com";
    let right = json!({"email": email, "password": PASSWORD});
    let wrong = json!({"email": email, "password": "wrong-password"});
    for tenant in [app.tenant("acme"), app.tenant("globex")] {
        assert_eq!(
            tenant.post("/register", right.clone()).await.0,
            StatusCode::ACCEPTED
        );
    }
    app.register(email).await;
    let acme = app.tenant("acme");
    for _ in 0..5 {
        let (status, body) = acme.post("/login", wrong.clone()).await;
        assert_unauthorized(status, &body);
    }
    let (status, body) = acme.post("/login", right.clone()).await;
    assert_unauthorized(status, &body);
    let (status, body) = app.tenant("globex").post("/login", right.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = right_login(&app, email).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A server with production-strength hashing: each verification takes long enough that,
/// without a reservation, every parallel request passes the lock check before the first
/// failure is recorded.
async fn slow_hashing(backend: Backend) -> TestApp {
    let options = Options::default()
        .env("HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB", "19456")
        .env("HOOKAUTH_PASSWORD__ARGON2_ITERATIONS", "2");
    TestApp::spawn_with(backend, options).await
}

/// POST /login once per password, all at once, each on its own request; the answers.
async fn parallel_logins(
    app: &TestApp,
    email: &str,
    passwords: Vec<String>,
) -> Vec<(StatusCode, Value)> {
    let mut logins = tokio::task::JoinSet::new();
    for password in passwords {
        let (http, url) = (app.http().clone(), app.url("/login"));
        let body = json!({"email": email, "password": password});
        logins.spawn(async move { send(&http, Method::POST, url, None, Some(body)).await });
    }
    logins.join_all().await
}

/// Twelve wrong passwords at once: at most five are checked against the hash (the issue saw
/// all twelve), and the account ends locked.
async fn parallel_guesses_reach_the_hash_at_most_max_attempts_times(backend: Backend) {
    let app = slow_hashing(backend).await;
    let email = "race@example.com";
    app.register(email).await;
    let checks = app.flows.password_checks();
    let guesses = (0..12).map(|i| format!("wrong-password-{i}")).collect();
    for (status, body) in parallel_logins(&app, email, guesses).await {
        assert_unauthorized(status, &body);
    }
    let verified = app.flows.password_checks() - checks;
    assert!(
        verified <= 5,
        "{verified} guesses were checked against the hash"
    );
    assert_eq!(attempts(&app, email).await, (5, true));
    let (status, body) = right_login(&app, email).await;
    assert_unauthorized(status, &body);
}

/// Twelve correct logins at once (workers sharing a service account): the reservation that
/// stops parallel guesses must not refuse a correct password because other attempts are in
/// flight. Those wait for their turn instead, and none is counted as a failure.
async fn parallel_correct_logins_all_succeed(backend: Backend) {
    let app = slow_hashing(backend).await;
    let email = "workers@example.com";
    app.register(email).await;
    let checks = app.flows.password_checks();
    for (status, body) in parallel_logins(&app, email, vec![PASSWORD.to_owned(); 12]).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(app.flows.password_checks() - checks, 12);
    assert_eq!(attempts(&app, email).await, (0, false));
}

async fn change_password(app: &TestApp, access: &str, current: &str) -> (StatusCode, Value) {
    app.request(
        Method::POST,
        "/change-password",
        Some(access),
        Some(json!({"current_password": current, "new_password": "a-new-password"})),
    )
    .await
}

async fn delete_me(app: &TestApp, access: &str, current: &str) -> (StatusCode, Value) {
    app.request(
        Method::DELETE,
        "/me",
        Some(access),
        Some(json!({"current_password": current})),
    )
    .await
}

async fn change_password_and_delete_me_count_towards_the_lockout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "session@example.com";
    let access = app.access_token(email).await;
    for _ in 0..3 {
        let (status, body) = change_password(&app, &access, "wrong-password").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    for _ in 0..2 {
        let (status, body) = delete_me(&app, &access, "wrong-password").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    assert_eq!(attempts(&app, email).await, (5, true));
    let (status, body) = right_login(&app, email).await;
    assert_unauthorized(status, &body);
}

async fn a_locked_account_cannot_be_guessed_through_change_password_or_delete_me(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "guess@example.com";
    let access = app.access_token(email).await;
    for _ in 0..5 {
        wrong_login(&app, email).await;
    }
    let checks = app.flows.password_checks();
    // Even the right password is refused while locked: neither route reveals it.
    let (status, body) = change_password(&app, &access, PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = delete_me(&app, &access, PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(app.flows.password_checks(), checks);
    // The account is still there, with its password.
    assert_eq!(app.get("/me", &access).await.0, StatusCode::OK);
    app.shift_clock(16 * MINUTE);
    let (status, body) = right_login(&app, email).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_password_reset_lifts_the_lock(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "victim@example.com";
    app.register(email).await;
    for _ in 0..7 {
        wrong_login(&app, email).await;
    }
    let (status, _) = app
        .post("/password-reset/request", json!({"email": email}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let token = match app
        .recorder
        .wait_for_kind(EventKind::SendPasswordResetEmail, 1)
        .await
        .payload
    {
        EventPayload::SendPasswordResetEmail { token, .. } => token,
        other => panic!("{other:?}"),
    };
    let (status, body) = app
        .post(
            "/password-reset/confirm",
            json!({"token": token, "new_password": "after-the-reset"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(attempts(&app, email).await, (0, false));
    let (status, body) = app
        .post(
            "/login",
            json!({"email": email, "password": "after-the-reset"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn guesses_during_a_lock_do_not_extend_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "extend@example.com";
    app.register(email).await;
    for _ in 0..5 {
        wrong_login(&app, email).await;
    }
    app.shift_clock(10 * MINUTE);
    for _ in 0..5 {
        wrong_login(&app, email).await;
    }
    // A password too long to hash is refused before hashing; during a lock it must not count
    // either (it used to be recorded before the lock was checked, moving the lock).
    let overlong = "x".repeat(5000);
    let (status, body) = app
        .post("/login", json!({"email": email, "password": overlong}))
        .await;
    assert_unauthorized(status, &body);
    assert_eq!(attempts(&app, email).await, (5, true));
    // The lock ends 15 minutes after the fifth failure, not after the last guess.
    app.shift_clock(15 * MINUTE + 1);
    let (status, body) = right_login(&app, email).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
