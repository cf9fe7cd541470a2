//! Email verification and password reset, with tokens taken from the events a hook receives.

use hookauth::domain::{EventKind, EventPayload};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_unauthorized};
use crate::on_both_backends;

on_both_backends!(
    verification_token_verifies_once,
    verified_users_get_no_token,
    password_reset_sets_a_new_password_and_ends_sessions,
    reset_request_answers_the_same_for_unknown_emails,
    reset_links_die_when_the_password_changes,
    reset_policy_failure_keeps_the_token,
);

/// Waits for the `n`th `kind` email event and returns its token.
async fn nth_token(app: &TestApp, kind: EventKind, n: usize) -> String {
    match app.recorder.wait_for_kind(kind, n).await.payload {
        EventPayload::SendVerificationEmail { token, .. }
        | EventPayload::SendPasswordResetEmail { token, .. } => token,
        other => panic!("not an email event: {other:?}"),
    }
}

async fn request_verification(app: &TestApp, access: &str) -> String {
    let n = app.recorder.count_of(EventKind::SendVerificationEmail) + 1;
    let (status, body) = app
        .request(Method::POST, "/verify-email/request", Some(access), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        body["detail"],
        "If eligible, a verification email has been sent."
    );
    nth_token(app, EventKind::SendVerificationEmail, n).await
}

async fn verification_token_verifies_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let access = app.access_token("ver@example.com").await;
    let token = request_verification(&app, &access).await;
    assert_eq!(token.len(), 43);
    let (status, body) = app
        .post("/verify-email/confirm", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["detail"], "Email verified.");
    assert_eq!(app.get("/me/verified", &access).await.0, StatusCode::OK);
    let (status, body) = app
        .post("/verify-email/confirm", json!({"token": token}))
        .await;
    assert_unauthorized(status, &body);
    let (status, body) = app
        .post("/verify-email/confirm", json!({"token": "forged"}))
        .await;
    assert_unauthorized(status, &body);
    let (status, _) = app.post("/verify-email/confirm", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn verified_users_get_no_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let access = app.access_token("ver2@example.com").await;
    let token = request_verification(&app, &access).await;
    let (status, body) = app
        .post("/verify-email/confirm", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.recorder
        .wait_for_kind(EventKind::AfterEmailVerify, 1)
        .await;
    let (status, _) = app
        .request(Method::POST, "/verify-email/request", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Settled: every committed event has been delivered, so no second email can still come.
    app.settle().await;
    assert_eq!(
        app.stored_events()
            .await
            .iter()
            .filter(|(kind, _)| *kind == EventKind::SendVerificationEmail)
            .count(),
        1,
        "no second verification event was committed"
    );
    assert_eq!(app.recorder.count_of(EventKind::SendVerificationEmail), 1);
}

async fn request_reset(app: &TestApp, email: &str) -> String {
    let n = app.recorder.count_of(EventKind::SendPasswordResetEmail) + 1;
    let (status, body) = app
        .post("/password-reset/request", json!({"email": email}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        body["detail"],
        "If the email exists, a reset link has been sent."
    );
    nth_token(app, EventKind::SendPasswordResetEmail, n).await
}

async fn password_reset_sets_a_new_password_and_ends_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let login = app.login("reset@example.com").await;
    let token = request_reset(&app, "Reset@Example.com").await;
    match app
        .recorder
        .last(EventKind::SendPasswordResetEmail)
        .unwrap()
        .payload
    {
        EventPayload::SendPasswordResetEmail { email, .. } => {
            assert_eq!(
                email, "reset@example.com",
                "the stored address, not as typed"
            )
        }
        _ => unreachable!(),
    }
    let (status, body) = app
        .post(
            "/password-reset/confirm",
            json!({"token": token, "new_password": "brand-new-secret-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["detail"], "Password has been reset.");
    let (status, body) = app
        .get("/me", login["access_token"].as_str().unwrap())
        .await;
    assert_unauthorized(status, &body);
    let (status, _) = app
        .post(
            "/login",
            json!({"email": "reset@example.com", "password": "brand-new-secret-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            "/password-reset/confirm",
            json!({"token": token, "new_password": "another-password"}),
        )
        .await;
    assert_unauthorized(status, &body);
}

async fn reset_request_answers_the_same_for_unknown_emails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.register("known@example.com").await,
        StatusCode::ACCEPTED
    );
    let known = app
        .post(
            "/password-reset/request",
            json!({"email": "known@example.com"}),
        )
        .await;
    let unknown = app
        .post(
            "/password-reset/request",
            json!({"email": "unknown@example.com"}),
        )
        .await;
    assert_eq!(known, unknown);
    let (status, _) = app
        .post("/password-reset/request", json!({"email": "not-an-email"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn reset_links_die_when_the_password_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.register("die@example.com").await, StatusCode::ACCEPTED);
    let older = request_reset(&app, "die@example.com").await;
    let newer = request_reset(&app, "die@example.com").await;
    let (status, _) = app
        .post(
            "/password-reset/confirm",
            json!({"token": newer, "new_password": "first-new-pass"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            "/password-reset/confirm",
            json!({"token": older, "new_password": "second-new-pass"}),
        )
        .await;
    assert_unauthorized(status, &body);
}

async fn reset_policy_failure_keeps_the_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.register("keep@example.com").await, StatusCode::ACCEPTED);
    let token = request_reset(&app, "keep@example.com").await;
    let (status, body) = app
        .post(
            "/password-reset/confirm",
            json!({"token": token, "new_password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"], "Password must be at least 8 characters");
    // A bad token is refused before the password is looked at.
    let (status, body) = app
        .post(
            "/password-reset/confirm",
            json!({"token": "forged", "new_password": "short"}),
        )
        .await;
    assert_unauthorized(status, &body);
    let (status, _) = app
        .post(
            "/password-reset/confirm",
            json!({"token": token, "new_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
