//! GET/PATCH/DELETE /me, /me/verified, change-password.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_unauthorized};
use crate::on_both_backends;

on_both_backends!(
    me_requires_a_valid_bearer_token,
    me_verified_is_forbidden_until_verified,
    patch_me_updates_declared_fields_only,
    delete_me_needs_proof_of_presence,
    change_password_ends_every_session,
    change_password_checks_current_before_policy,
);

async fn me_requires_a_valid_bearer_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let access = app.access_token("me@example.com").await;
    let (status, body) = app.request(Method::GET, "/me", None, None).await;
    assert_unauthorized(status, &body);
    let response = app
        .http()
        .get(app.url("/me"))
        .header("authorization", format!("BEARER {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .http()
        .get(app.url("/me"))
        .header("authorization", format!("Basic {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

async fn me_verified_is_forbidden_until_verified(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let access = app.access_token("v@example.com").await;
    let (status, body) = app.get("/me/verified", &access).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["detail"], "Not enough permissions");
}

async fn patch_me_updates_declared_fields_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let access = app.access_token("patch@example.com").await;
    let patch = |body| app.request(Method::PATCH, "/me", Some(&access), Some(body));

    let (status, user) = patch(json!({"display_name": "Pat", "is_superuser": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["display_name"], "Pat");
    assert_eq!(user["is_superuser"], false);
    assert_eq!(app.get("/me", &access).await.1["display_name"], "Pat");

    let (status, body) = patch(json!({"email": "x@example.com"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["detail"], "No valid fields to update");
    let (status, body) = patch(json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = patch(json!({"zeta": 1, "alpha": 2})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"], "Unknown fields: alpha, zeta");
    let (status, body) = patch(json!({"display_name": null})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["display_name"]));
    assert_eq!(app.get("/me", &access).await.1["display_name"], "Pat");
}

async fn delete_me_needs_proof_of_presence(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let login = app.login("del@example.com").await;
    let access = login["access_token"].as_str().unwrap().to_owned();
    let (status, body) = app
        .request(
            Method::DELETE,
            "/me",
            Some(&access),
            Some(json!({"current_password": "wrong-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["detail"], "Current password is incorrect");

    // A session older than the re-authentication window needs the password.
    app.shift_clock(-600_000);
    let stale = app.access_token("del@example.com").await;
    app.shift_clock(0);
    let (status, body) = app.request(Method::DELETE, "/me", Some(&stale), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["detail"], "Re-authentication required");
    let (status, _) = app
        .request(
            Method::DELETE,
            "/me",
            Some(&stale),
            Some(json!({"current_password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, body) = app.get("/me", &access).await;
    assert_unauthorized(status, &body);
    let (status, body) = app
        .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await;
    assert_unauthorized(status, &body);
    // The email can be registered again.
    app.login("del@example.com").await;
}

async fn change_password_ends_every_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.login("cp@example.com").await;
    let second = app.login("cp@example.com").await;
    let access = first["access_token"].as_str().unwrap();
    let (status, body) = app
        .request(
            Method::POST,
            "/change-password",
            Some(access),
            Some(json!({"current_password": PASSWORD, "new_password": "brand-new-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["detail"], "Password changed successfully.");
    for login in [&first, &second] {
        let (status, body) = app
            .get("/me", login["access_token"].as_str().unwrap())
            .await;
        assert_unauthorized(status, &body);
        let (status, body) = app
            .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
            .await;
        assert_unauthorized(status, &body);
    }
    let (status, _) = app
        .post(
            "/login",
            json!({"email": "cp@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(
            "/login",
            json!({"email": "cp@example.com", "password": "brand-new-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn change_password_checks_current_before_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let access = app.access_token("cp2@example.com").await;
    let change = |body| app.request(Method::POST, "/change-password", Some(&access), Some(body));
    let (status, body) = change(json!({"new_password": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["detail"], "Current password is incorrect");
    let (status, _) =
        change(json!({"current_password": "nope", "new_password": "long-enough-1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Short, and not a common password (which would add its own rule to the detail).
    let (status, body) =
        change(json!({"current_password": PASSWORD, "new_password": "zq8-Kp"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"], "Password must be at least 8 characters");
    let (status, _) = change(json!({"current_password": PASSWORD})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Unauthenticated with a bad body: authentication is checked first.
    let (status, _) = app
        .request(Method::POST, "/change-password", None, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
