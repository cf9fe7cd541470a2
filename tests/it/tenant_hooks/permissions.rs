//! Who may manage a tenant's hooks: its superusers and users holding `hooks:manage`, and the
//! operator on any tenant. Plain users get 403; another tenant's admin and anonymous get 401.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::*;
use crate::helpers::{Backend, send};
use crate::on_both_backends;
use crate::shared::{Sink, guest};

on_both_backends!(only_tenant_admins_and_the_operator_manage_hooks);

async fn only_tenant_admins_and_the_operator_manage_hooks(backend: Backend) {
    let sink = Sink::start().await;
    let app = spawn(backend, options(sink.port)).await;
    create_tenant(&app, "acme").await;
    create_tenant(&app, "globex").await;
    let superuser_token = superuser(&app, "acme", "root.acme@example.com").await;
    let other_admin = superuser(&app, "globex", "root.globex@example.com").await;
    let plain = login(&app, "acme", "plain.acme@example.com").await;

    // A user given hooks:manage through a role, by acme's superuser.
    let hooker = login(&app, "acme", "hooker.acme@example.com").await;
    let (got, me) = send(
        app.http(),
        Method::GET,
        format!("http://{}/t/acme/api/v1/auth/me", app.addr),
        Some(&hooker),
        None,
    )
    .await;
    assert_eq!(got, StatusCode::OK, "{me}");
    let admin_api = format!("http://{}/t/acme/api/v1/auth/admin", app.addr);
    let (status, body) = send(
        app.http(),
        Method::POST,
        format!("{admin_api}/assign-permission"),
        Some(&superuser_token),
        Some(json!({"role": "hook-admins", "permission": "hooks:manage"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(
        app.http(),
        Method::POST,
        format!("{admin_api}/assign-role"),
        Some(&superuser_token),
        Some(json!({"user_id": me["id"], "role": "hook-admins"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Roles are in the token: log in again.
    let hooker = login(&app, "acme", "hooker.acme@example.com").await;

    let component = guest("minimal");
    let allowed: [(&str, Option<&str>); 3] = [
        ("hooks:manage holder", Some(&hooker)),
        ("superuser", Some(&superuser_token)),
        ("operator", Some(OPERATOR)),
    ];
    for (who, token) in allowed {
        let (status, body) = call(&app, Method::GET, "acme", "/hooks", token, None).await;
        assert_eq!(status, StatusCode::OK, "{who}: {body}");
        let (status, body) = deploy(&app, "acme", "mine", token, &component, None).await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{who}: {status} {body}"
        );
        let (status, body) = call(&app, Method::GET, "acme", "/hook-secrets", token, None).await;
        assert_eq!(status, StatusCode::OK, "{who}: {body}");
    }

    let refused: [(&str, Option<&str>, StatusCode); 4] = [
        ("plain user", Some(&plain), StatusCode::FORBIDDEN),
        (
            "other tenant's admin",
            Some(&other_admin),
            StatusCode::UNAUTHORIZED,
        ),
        ("anonymous", None, StatusCode::UNAUTHORIZED),
        (
            "wrong operator token",
            Some("operator-token-0123456789abcdef0123456780"),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (who, token, expected) in refused {
        let (status, body) = call(&app, Method::GET, "acme", "/hooks", token, None).await;
        assert_eq!(status, expected, "{who}: {body}");
        let (status, _) = deploy(&app, "acme", "theirs", token, &component, None).await;
        assert_eq!(status, expected, "{who}");
        let (status, _) = call(&app, Method::DELETE, "acme", "/hooks/mine", token, None).await;
        assert_eq!(status, expected, "{who}");
        let (status, _) = call(
            &app,
            Method::PUT,
            "acme",
            "/hook-secrets/k",
            token,
            Some(json!({"value": "v"})),
        )
        .await;
        assert_eq!(status, expected, "{who}");
        let (status, _) = call(&app, Method::GET, "acme", "/hook-failures", token, None).await;
        assert_eq!(status, expected, "{who}");
    }
    // Still only the one hook: nothing refused changed anything.
    let (got, list) = call(&app, Method::GET, "acme", "/hooks", Some(OPERATOR), None).await;
    assert_eq!(got, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Tenants are the operator's: even a superuser cannot create or delete one.
    let (status, _) = call(
        &app,
        Method::POST,
        "default",
        "/tenants",
        Some(&superuser_token),
        Some(json!({"id": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, list) = call(
        &app,
        Method::GET,
        "default",
        "/tenants",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.to_string().contains("globex"));
    let (status, body) = call(
        &app,
        Method::POST,
        "default",
        "/tenants",
        Some(OPERATOR),
        Some(json!({"id": "acme"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Deleting a tenant removes its users and hooks.
    let (status, _) = call(
        &app,
        Method::DELETE,
        "default",
        "/tenants/acme",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&app, Method::GET, "acme", "/hooks", Some(OPERATOR), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        app.flows
            .store
            .tenant_hooks(&hookauth::domain::TenantId::parse("acme").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}
