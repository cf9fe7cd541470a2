//! Password rules (`[password]`): every rule refuses with its own stable code and a message
//! naming it, at register, change-password and reset; a password that breaks several gets all
//! of them, in a fixed order.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, TestApp};
use crate::on_both_backends;
use hookauth::domain::{EventKind, EventPayload};

on_both_backends!(
    each_rule_refuses_with_its_own_code,
    the_rules_apply_to_change_and_reset_too,
    the_defaults_refuse_common_passwords_and_the_email_name,
);

fn strict(backend_options: Options) -> Options {
    backend_options
        .env("HOOKAUTH_PASSWORD__MIN_LENGTH", "10")
        .env("HOOKAUTH_PASSWORD__MAX_LENGTH", "40")
        .env("HOOKAUTH_PASSWORD__REQUIRE_LOWERCASE", "true")
        .env("HOOKAUTH_PASSWORD__REQUIRE_UPPERCASE", "true")
        .env("HOOKAUTH_PASSWORD__REQUIRE_DIGIT", "true")
        .env("HOOKAUTH_PASSWORD__REQUIRE_SYMBOL", "true")
}

/// The codes of a 422 `password_policy` answer, in order.
fn violations(status: StatusCode, body: &Value) -> Vec<String> {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "password_policy", "{body}");
    let list = body["violations"].as_array().expect("violations");
    let messages: Vec<&str> = list
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        body["detail"],
        messages.join("; "),
        "detail names every rule"
    );
    list.iter()
        .map(|v| v["code"].as_str().unwrap().to_owned())
        .collect()
}

async fn register(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    app.post("/register", json!({"email": email, "password": password}))
        .await
}

async fn each_rule_refuses_with_its_own_code(backend: Backend) {
    let app = TestApp::spawn_with(backend, strict(Options::default())).await;
    let email = "jonathan.smith+shop@example.com";
    for (password, code, message) in [
        ("Sh0rt!x", "password_too_short", "at least 10 characters"),
        (
            "Aa1!aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "password_too_long",
            "at most 40 characters",
        ),
        (
            "NO-LOWER-CASE-1",
            "password_needs_lowercase",
            "lowercase letter",
        ),
        (
            "no-upper-case-1",
            "password_needs_uppercase",
            "uppercase letter",
        ),
        ("No-Digits-Here!", "password_needs_digit", "digit"),
        ("NoSymbols12345", "password_needs_symbol", "symbol"),
        ("x-JONATHAN.SMITH-1", "password_contains_email", "email"),
        ("Password1!", "password_too_common", "too common"),
    ] {
        let (status, body) = register(&app, email, password).await;
        assert_eq!(violations(status, &body), [code], "{password}: {body}");
        let text = body["violations"][0]["message"].as_str().unwrap();
        assert!(text.contains(message), "{code}: {text}");
    }
    // Several at once, in the fixed order.
    let (status, body) = register(&app, email, "abc").await;
    assert_eq!(
        violations(status, &body),
        [
            "password_too_short",
            "password_needs_uppercase",
            "password_needs_digit",
            "password_needs_symbol",
            "password_too_common",
        ]
    );
    // Unicode classes count: É is upper case, é lower case, ٣ a digit.
    let (status, body) = register(&app, "unicode@example.com", "Élan-vital-٣é").await;
    assert!(status.is_success(), "{body}");
    // Nothing was created by the refusals.
    let (status, body) = register(&app, email, "Good-Pass-2024!").await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app
        .post(
            "/login",
            json!({"email": email, "password": "Good-Pass-2024!"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn the_rules_apply_to_change_and_reset_too(backend: Backend) {
    let app = TestApp::spawn_with(backend, strict(Options::default())).await;
    let email = "changer@example.com";
    let first = "First-Pass-123!";
    let (status, body) = register(&app, email, first).await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app
        .post("/login", json!({"email": email, "password": first}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = app
        .request(
            Method::POST,
            "/change-password",
            Some(&token),
            Some(json!({"current_password": first, "new_password": "changer-Pass-1!"})),
        )
        .await;
    assert_eq!(violations(status, &body), ["password_contains_email"]);
    let (status, body) = app
        .request(
            Method::POST,
            "/change-password",
            Some(&token),
            Some(json!({"current_password": first, "new_password": "lowercase-only-1!"})),
        )
        .await;
    assert_eq!(violations(status, &body), ["password_needs_uppercase"]);

    // Reset: the policy is checked with the account's email, and a refusal keeps the token.
    let n = app.recorder.count_of(EventKind::SendPasswordResetEmail) + 1;
    let (status, _) = app
        .post("/password-reset/request", json!({"email": email}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reset = match app
        .recorder
        .wait_for_kind(EventKind::SendPasswordResetEmail, n)
        .await
        .payload
    {
        EventPayload::SendPasswordResetEmail { token, .. } => token,
        other => panic!("{other:?}"),
    };
    let (status, body) = app
        .post(
            "/password-reset/confirm",
            json!({"token": reset, "new_password": "Changer-2024-ok!"}),
        )
        .await;
    assert_eq!(violations(status, &body), ["password_contains_email"]);
    let (status, body) = app
        .post(
            "/password-reset/confirm",
            json!({"token": reset, "new_password": "Fresh-Start-2024!"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn the_defaults_refuse_common_passwords_and_the_email_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for common in ["password123", "Qwerty123", "iloveyou", "  LetMeIn1 "] {
        let (status, body) = register(&app, "someone@example.com", common).await;
        // Those under 8 characters break the length rule as well.
        let codes = violations(status, &body);
        assert!(
            codes.contains(&"password_too_common".to_owned()),
            "{common}: {codes:?}"
        );
    }
    let (status, body) = register(&app, "margaret@example.com", "my-MARGARET-pass").await;
    assert_eq!(violations(status, &body), ["password_contains_email"]);
    // A short local part forbids nothing.
    let (status, body) = register(&app, "al@example.com", "always-alright-99").await;
    assert!(status.is_success(), "{body}");
    let (status, body) = register(&app, "fine@example.com", PASSWORD).await;
    assert!(status.is_success(), "{body}");
}
