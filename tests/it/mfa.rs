//! TOTP second factor, end to end over HTTP: enrol, confirm, sign in with a code or a recovery
//! code, replays and lockout, disable. Codes are computed here from the secret the server hands
//! out (RFC 6238 written out below), never by the server's own TOTP code.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, TestApp, assert_unauthorized, totp};
use crate::on_both_backends;
use hookauth::domain::EventKind;

on_both_backends!(
    the_whole_flow_with_codes_and_recovery_codes,
    codes_are_single_use_and_guesses_lock_the_factor,
    enrolling_needs_a_fresh_session_or_the_password,
    code_attempts_are_rate_limited,
);

/// A code for the server's current step.
fn code(app: &TestApp, secret: &str) -> String {
    totp(secret, app.server_now_secs())
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.request(method, path, Some(token), Some(body)).await
}

/// Registers `email`, enrols and confirms a factor; answers (secret, recovery codes).
async fn enrol(app: &TestApp, email: &str) -> (String, Vec<String>) {
    let token = app.access_token(email).await;
    let (status, body) = call(app, Method::POST, "/mfa/enroll", &token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    let (status, body) = call(
        app,
        Method::POST,
        "/mfa/confirm",
        &token,
        json!({"code": code(app, &secret)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

/// A correct password for an account with a factor: 202 and the `mfa_token`.
async fn password_step(app: &TestApp, email: &str) -> String {
    let (status, body) = app
        .post("/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["mfa_required"], true);
    assert!(body.get("access_token").is_none(), "no session yet: {body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn verify(app: &TestApp, mfa_token: &str, code: &str) -> (StatusCode, Value) {
    app.post("/mfa/verify", json!({"mfa_token": mfa_token, "code": code}))
        .await
}

async fn the_whole_flow_with_codes_and_recovery_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "mfa-user@example.com";
    let token = app.access_token(email).await;

    let (status, body) = app.get("/mfa", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"enabled": false, "recovery_codes_remaining": 0})
    );

    // Enrolment: a secret and its URI, which do nothing until confirmed.
    let (status, body) = call(&app, Method::POST, "/mfa/enroll", &token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32, "160-bit secret: {secret}");
    let uri = body["provisioning_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/hookauth:mfa-user%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=hookauth"), "{uri}");
    // Unconfirmed: sign-in is unchanged.
    let (status, _) = app
        .post("/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::OK);

    // A wrong first code does not turn it on.
    let wrong = if code(&app, &secret) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, body) = call(
        &app,
        Method::POST,
        "/mfa/confirm",
        &token,
        json!({"code": wrong}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_mfa_code");
    let (status, body) = call(
        &app,
        Method::POST,
        "/mfa/confirm",
        &token,
        json!({"code": code(&app, &secret)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let enabled = app
        .recorder
        .wait_for_kind(EventKind::AfterMfaEnabled, 1)
        .await;
    assert_eq!(
        serde_json::to_value(&enabled.payload).unwrap()["user"]["email"],
        email
    );
    let (status, body) = app.get("/mfa", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"enabled": true, "recovery_codes_remaining": 10})
    );
    // Confirming again, or restarting enrolment, cannot replace a live factor.
    let (status, body) = call(&app, Method::POST, "/mfa/enroll", &token, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "mfa_already_enabled");

    // The password alone no longer signs in; no after_login until the code.
    let logins_before = app.recorder.count_of(EventKind::AfterLogin);
    let mfa_token = password_step(&app, email).await;
    let (status, body) = verify(&app, &mfa_token, wrong).await;
    assert_unauthorized(status, &body);
    // A token from /login is no access token.
    let (status, body) = app.get("/me", &mfa_token).await;
    assert_unauthorized(status, &body);
    app.shift_clock(30_000); // the confirmation's step is used; take the next one
    let (status, body) = verify(&app, &mfa_token, &code(&app, &secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], email);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (status, me) = app.get("/me", &access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    app.recorder
        .wait_for_kind(EventKind::AfterLogin, logins_before + 1)
        .await;

    // A recovery code works once, typed in upper case with spaces.
    app.shift_clock(60_000);
    let mfa_token = password_step(&app, email).await;
    let typed = format!(" {} ", codes[3].to_uppercase());
    let (status, body) = verify(&app, &mfa_token, &typed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mfa_token = password_step(&app, email).await;
    let (status, body) = verify(&app, &mfa_token, &codes[3]).await;
    assert_unauthorized(status, &body);
    let (status, body) = app.get("/mfa", &access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["recovery_codes_remaining"], 9);

    // Turning it off needs a current code.
    let (status, body) = call(
        &app,
        Method::DELETE,
        "/mfa",
        &access,
        json!({"code": wrong}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    app.shift_clock(90_000);
    let (status, body) = call(
        &app,
        Method::DELETE,
        "/mfa",
        &access,
        json!({"code": code(&app, &secret)}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let disabled = app
        .recorder
        .wait_for_kind(EventKind::AfterMfaDisabled, 1)
        .await;
    assert_eq!(
        serde_json::to_value(&disabled.payload).unwrap()["user"]["email"],
        email
    );
    let (status, body) = app
        .post("/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The factor's events went through the outbox like every other event.
    let stored: Vec<EventKind> = app
        .stored_events()
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(stored.contains(&EventKind::AfterMfaEnabled), "{stored:?}");
    assert!(stored.contains(&EventKind::AfterMfaDisabled), "{stored:?}");
    // The secret is not stored in the clear.
    let row = app
        .flows
        .store
        .find_user_by_email(&hookauth::domain::TenantId::default_tenant(), email)
        .await
        .unwrap()
        .unwrap();
    assert!(row.hashed_password.is_some());
}

async fn codes_are_single_use_and_guesses_lock_the_factor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "replay@example.com";
    let (secret, codes) = enrol(&app, email).await;
    app.shift_clock(30_000);
    let current = code(&app, &secret);
    let mfa_token = password_step(&app, email).await;
    let (status, body) = verify(&app, &mfa_token, &current).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same code again, with a fresh password step: refused (read over a shoulder).
    let second = password_step(&app, email).await;
    let (status, body) = verify(&app, &second, &current).await;
    assert_unauthorized(status, &body);
    // The used mfa_token cannot buy a second session, even with a new code.
    app.shift_clock(60_000);
    let (status, body) = verify(&app, &mfa_token, &code(&app, &secret)).await;
    assert_unauthorized(status, &body);
    // An expired mfa_token (5 minutes) is refused.
    let stale = password_step(&app, email).await;
    app.shift_clock(60_000 + 301_000);
    let (status, body) = verify(&app, &stale, &code(&app, &secret)).await;
    assert_unauthorized(status, &body);

    // Five wrong codes lock the factor: then even a right code and a recovery code fail,
    // and a correct password does not buy fresh guesses.
    app.shift_clock(400_000);
    let wrong = if code(&app, &secret) == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..3 {
        let mfa_token = password_step(&app, email).await;
        let (status, body) = verify(&app, &mfa_token, wrong).await;
        assert_unauthorized(status, &body);
    }
    let mfa_token = password_step(&app, email).await;
    for _ in 0..2 {
        let (status, body) = verify(&app, &mfa_token, wrong).await;
        assert_unauthorized(status, &body);
    }
    let (status, body) = verify(&app, &mfa_token, &code(&app, &secret)).await;
    assert_unauthorized(status, &body);
    let (status, body) = verify(&app, &mfa_token, &codes[0]).await;
    assert_unauthorized(status, &body);
    // After the lock (15 minutes) the right code works with the same token if it is still
    // valid; here a fresh password step.
    app.shift_clock(400_000 + 15 * 60_000 + 1_000);
    let mfa_token = password_step(&app, email).await;
    let (status, body) = verify(&app, &mfa_token, &code(&app, &secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn enrolling_needs_a_fresh_session_or_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.access_token("stale@example.com").await;
    // Older than reauth_max_age_seconds (default 5 minutes) but within the token's life.
    app.shift_clock(6 * 60_000);
    let (status, body) = call(&app, Method::POST, "/mfa/enroll", &token, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "reauthentication_required");
    let (status, body) = call(
        &app,
        Method::POST,
        "/mfa/enroll",
        &token,
        json!({"current_password": "not-the-password"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "current_password_incorrect");
    let (status, body) = call(
        &app,
        Method::POST,
        "/mfa/enroll",
        &token,
        json!({"current_password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Confirming without an enrolment, and bad bodies.
    let other = app.access_token("other@example.com").await;
    let (status, body) = call(
        &app,
        Method::POST,
        "/mfa/confirm",
        &other,
        json!({"code": "123456"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "mfa_not_enrolled");
    let (status, body) = call(
        &app,
        Method::POST,
        "/mfa/confirm",
        &other,
        json!({"code": null}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = call(
        &app,
        Method::POST,
        "/mfa/confirm",
        &other,
        json!({"code": "1".repeat(65)}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app.request(Method::GET, "/mfa", None, None).await;
    assert_unauthorized(status, &body);
}

async fn code_attempts_are_rate_limited(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options::default()
            .env("HOOKAUTH_RATE_LIMIT__ENABLED", "true")
            .env("HOOKAUTH_RATE_LIMIT__LIMITS__LOGIN", "100")
            .env("HOOKAUTH_RATE_LIMIT__LIMITS__REGISTER", "100")
            .env("HOOKAUTH_RATE_LIMIT__LIMITS__MFA", "3"),
    )
    .await;
    let mut last = StatusCode::OK;
    for _ in 0..4 {
        let (status, _) = app
            .post(
                "/mfa/verify",
                json!({"mfa_token": "nope", "code": "123456"}),
            )
            .await;
        last = status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}
