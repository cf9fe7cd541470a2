//! Superuser role and permission administration.

use hookauth::domain::{Email, Password, TenantId};
use hookauth::flows;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp};
use crate::on_both_backends;

on_both_backends!(
    superusers_manage_roles_that_reach_me_and_tokens,
    admin_routes_check_authorisation_before_the_body,
    permissions_are_managed_per_role,
);

async fn superuser_token(app: &TestApp) -> String {
    flows::create_superuser(
        &app.flows,
        &TenantId::default_tenant(),
        Email::parse("root@example.com").unwrap(),
        Password::new(PASSWORD.into()),
    )
    .await
    .unwrap();
    app.access_token("root@example.com").await
}

async fn admin(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.request(Method::POST, path, Some(token), Some(body))
        .await
}

async fn superusers_manage_roles_that_reach_me_and_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = superuser_token(&app).await;
    let user = app.login("member@example.com").await;
    let user_id = user["user"]["id"].as_str().unwrap();
    let access = user["access_token"].as_str().unwrap();

    let (status, body) = admin(
        &app,
        &root,
        "/admin/assign-role",
        json!({"user_id": user_id, "role": "editor"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["detail"],
        format!("Role 'editor' assigned to user {user_id}.")
    );
    let (status, _) = admin(
        &app,
        &root,
        "/admin/assign-role",
        json!({"user_id": user_id, "role": "editor"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "assigning twice is idempotent");
    assert_eq!(app.get("/me", access).await.1["roles"], json!(["editor"]));

    // The next access token carries the role.
    let (got, pair) = app
        .post("/refresh", json!({"refresh_token": user["refresh_token"]}))
        .await;
    assert_eq!(got, StatusCode::OK, "{pair}");
    let claims = pair["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["roles"], json!(["editor"]));

    let (status, body) = admin(
        &app,
        &root,
        "/admin/remove-role",
        json!({"user_id": user_id, "role": "editor"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["detail"],
        format!("Role 'editor' removed from user {user_id}.")
    );
    assert_eq!(app.get("/me", access).await.1["roles"], json!([]));

    let unknown = "01a2142b-22ef-7083-b128-cb7d17fe886b";
    let (status, body) = admin(
        &app,
        &root,
        "/admin/assign-role",
        json!({"user_id": unknown, "role": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "User not found");
    let (status, _) = admin(
        &app,
        &root,
        "/admin/assign-role",
        json!({"user_id": "nope", "role": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn admin_routes_check_authorisation_before_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let plain = app.access_token("plain@example.com").await;
    let (status, body) = admin(&app, &plain, "/admin/assign-role", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["detail"], "Not enough permissions");
    let (status, _) = app
        .request(Method::POST, "/admin/assign-role", None, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/admin/role-permissions/editor", &plain).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn permissions_are_managed_per_role(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = superuser_token(&app).await;
    for permission in ["posts:write", "posts:read"] {
        let (status, body) = admin(
            &app,
            &root,
            "/admin/assign-permission",
            json!({"role": "editor", "permission": permission}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["detail"],
            format!("Permission '{permission}' assigned to role 'editor'.")
        );
    }
    assert_eq!(
        app.get("/admin/role-permissions/editor", &root).await.1,
        json!(["posts:read", "posts:write"])
    );
    let (status, _) = admin(
        &app,
        &root,
        "/admin/remove-permission",
        json!({"role": "editor", "permission": "posts:write"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.get("/admin/role-permissions/editor", &root).await.1,
        json!(["posts:read"])
    );
    assert_eq!(
        app.get("/admin/role-permissions/ghost", &root).await.1,
        json!([])
    );
}
