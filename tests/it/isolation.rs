//! Tenant isolation beyond login, /me and /refresh: sessions, admin routes, and the one-time
//! verification and reset tokens. Each refusal is paired with the same request succeeding in
//! the right tenant, so a refusal cannot come from a broken request.

use hookauth::domain::{Email, EventKind, EventPayload, Password, TenantId};
use hookauth::flows;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, Recorder, TestApp, assert_unauthorized};
use crate::on_both_backends;

on_both_backends!(
    sessions_of_one_tenant_cannot_be_listed_or_revoked_from_another,
    a_superuser_administers_only_its_own_tenant,
    verification_and_reset_tokens_work_only_in_their_tenant,
);

async fn with_tenants(app: &TestApp) {
    for name in ["acme", "globex"] {
        app.flows
            .store
            .create_tenant(&TenantId::parse(name).unwrap(), 0)
            .await
            .unwrap();
    }
}

/// Registers `email` in `tenant` and logs in; returns the login body.
async fn login(app: &TestApp, tenant: &str, email: &str) -> Value {
    let t = app.tenant(tenant);
    let creds = json!({"email": email, "password": PASSWORD});
    t.post("/register", creds.clone()).await;
    let (status, body) = t.post("/login", creds).await;
    assert_eq!(status, StatusCode::OK, "{tenant}: {body}");
    body
}

fn access(login: &Value) -> &str {
    login["access_token"].as_str().unwrap()
}

async fn sessions_of_one_tenant_cannot_be_listed_or_revoked_from_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    with_tenants(&app).await;
    let (acme, globex) = (app.tenant("acme"), app.tenant("globex"));
    // The same email in both tenants: two unrelated accounts.
    let a = login(&app, "acme", "same@example.com").await;
    let g = login(&app, "globex", "same@example.com").await;
    let (status, a_sessions) = acme
        .request(Method::GET, "/sessions", Some(access(&a)), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{a_sessions}");
    assert_eq!(a_sessions.as_array().unwrap().len(), 1);
    let a_family = a_sessions[0]["family_id"].as_str().unwrap().to_owned();

    // acme's token is worthless under globex's prefix (and the default tenant's).
    let (status, body) = globex
        .request(Method::GET, "/sessions", Some(access(&a)), None)
        .await;
    assert_unauthorized(status, &body);
    let (status, body) = app.get("/sessions", access(&a)).await;
    assert_unauthorized(status, &body);
    let (status, body) = globex
        .request(
            Method::DELETE,
            &format!("/sessions/{a_family}"),
            Some(access(&a)),
            None,
        )
        .await;
    assert_unauthorized(status, &body);

    // globex's user sees only its own session, and acme's session id is not found for it.
    let (status, g_sessions) = globex
        .request(Method::GET, "/sessions", Some(access(&g)), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let g_sessions = g_sessions.as_array().unwrap();
    assert_eq!(g_sessions.len(), 1, "{g_sessions:?}");
    assert_ne!(g_sessions[0]["family_id"], json!(a_family));
    let (status, body) = globex
        .request(
            Method::DELETE,
            &format!("/sessions/{a_family}"),
            Some(access(&g)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["detail"], "Session not found");
    // Signing out "every other session" in globex leaves acme's alone.
    let (status, body) = globex
        .request(
            Method::POST,
            "/sessions/revoke-others",
            Some(access(&g)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"detail": "Signed out 0 other session(s)."}));

    // acme's session survived all of it, and its owner can still end it.
    assert_eq!(
        acme.request(Method::GET, "/me", Some(access(&a)), None)
            .await
            .0,
        StatusCode::OK
    );
    let (status, _) = acme
        .post("/refresh", json!({"refresh_token": a["refresh_token"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "acme's refresh token still works");
    let (status, body) = acme
        .request(
            Method::DELETE,
            &format!("/sessions/{a_family}"),
            Some(access(&a)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = acme
        .request(Method::GET, "/me", Some(access(&a)), None)
        .await;
    assert_unauthorized(status, &body);
    // ...which did not touch globex's.
    assert_eq!(
        globex
            .request(Method::GET, "/me", Some(access(&g)), None)
            .await
            .0,
        StatusCode::OK
    );
}

async fn superuser_of(app: &TestApp, tenant: &str, email: &str) -> String {
    flows::create_superuser(
        &app.flows,
        &TenantId::parse(tenant).unwrap(),
        Email::parse(email).unwrap(),
        Password::new(PASSWORD.into()),
    )
    .await
    .unwrap();
    access(&login(app, tenant, email).await).to_owned()
}

async fn a_superuser_administers_only_its_own_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    with_tenants(&app).await;
    let (acme, globex) = (app.tenant("acme"), app.tenant("globex"));
    let acme_root = superuser_of(&app, "acme", "root-acme@example.com").await;
    let globex_root = superuser_of(&app, "globex", "root-globex@example.com").await;
    let a = login(&app, "acme", "member@example.com").await;
    let g = login(&app, "globex", "member@example.com").await;
    let a_id = a["user"]["id"].as_str().unwrap().to_owned();
    let g_id = g["user"]["id"].as_str().unwrap().to_owned();
    assert_ne!(a_id, g_id);

    // globex's member holds globex's "editor" role.
    let (status, body) = globex
        .request(
            Method::POST,
            "/admin/assign-role",
            Some(&globex_root),
            Some(json!({"user_id": g_id, "role": "editor"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // acme's superuser, on its own prefix, cannot reach globex's user by id: assigning is
    // "not found"; removing is idempotent (no existence check, 200 for any id) and must
    // leave globex's grant alone.
    let (status, body) = acme
        .request(
            Method::POST,
            "/admin/assign-role",
            Some(&acme_root),
            Some(json!({"user_id": g_id, "role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["detail"], "User not found");
    let (status, body) = acme
        .request(
            Method::POST,
            "/admin/remove-role",
            Some(&acme_root),
            Some(json!({"user_id": g_id, "role": "editor"})),
        )
        .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::NOT_FOUND,
        "{status} {body}"
    );
    assert_eq!(
        globex
            .request(Method::GET, "/me", Some(access(&g)), None)
            .await
            .1["roles"],
        json!(["editor"]),
        "acme's superuser changed a globex user's roles"
    );
    // ...and its token is not a superuser's (nor anyone's) under globex's prefix.
    for (method, path, body) in [
        (
            Method::POST,
            "/admin/assign-role",
            Some(json!({"user_id": g_id, "role": "editor"})),
        ),
        (
            Method::POST,
            "/admin/assign-permission",
            Some(json!({"role": "editor", "permission": "posts:write"})),
        ),
        (Method::GET, "/admin/role-permissions/editor", None),
    ] {
        let (status, reply) = globex.request(method, path, Some(&acme_root), body).await;
        assert_unauthorized(status, &reply);
    }
    // The default tenant's superuser cannot either.
    flows::create_superuser(
        &app.flows,
        &TenantId::default_tenant(),
        Email::parse("root@example.com").unwrap(),
        Password::new(PASSWORD.into()),
    )
    .await
    .unwrap();
    let default_root = app.access_token("root@example.com").await;
    let (status, body) = app
        .request(
            Method::POST,
            "/admin/assign-role",
            Some(&default_root),
            Some(json!({"user_id": g_id, "role": "editor"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The same calls do work within acme: the refusals above were about the tenant.
    let (status, body) = acme
        .request(
            Method::POST,
            "/admin/assign-role",
            Some(&acme_root),
            Some(json!({"user_id": a_id, "role": "editor"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = acme
        .request(
            Method::POST,
            "/admin/assign-permission",
            Some(&acme_root),
            Some(json!({"role": "editor", "permission": "posts:write"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        acme.request(Method::GET, "/me", Some(access(&a)), None)
            .await
            .1["roles"],
        json!(["editor"])
    );
    assert_eq!(
        acme.request(
            Method::GET,
            "/admin/role-permissions/editor",
            Some(&acme_root),
            None
        )
        .await
        .1,
        json!(["posts:write"])
    );
    // globex's role of the same name is its own: acme's permission is not on it.
    let (status, perms) = globex
        .request(
            Method::GET,
            "/admin/role-permissions/editor",
            Some(&globex_root),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(perms, json!([]));
    // And globex's superuser cannot take acme's role away from acme's user.
    let (status, body) = globex
        .request(
            Method::POST,
            "/admin/remove-role",
            Some(&globex_root),
            Some(json!({"user_id": a_id, "role": "editor"})),
        )
        .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::NOT_FOUND,
        "{status} {body}"
    );
    assert_eq!(
        acme.request(Method::GET, "/me", Some(access(&a)), None)
            .await
            .1["roles"],
        json!(["editor"])
    );
}

fn token_of(recorder: &Recorder, kind: EventKind) -> String {
    match recorder.last(kind).expect("event delivered").payload {
        EventPayload::SendVerificationEmail { token, .. }
        | EventPayload::SendPasswordResetEmail { token, .. } => token,
        other => panic!("no token in {other:?}"),
    }
}

async fn verification_and_reset_tokens_work_only_in_their_tenant(backend: Backend) {
    let acme_id = TenantId::parse("acme").unwrap();
    let acme_mail = Recorder::named("acme-mail");
    let options = Options {
        tenant_handlers: vec![(acme_id, acme_mail.clone())],
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    with_tenants(&app).await;
    let (acme, globex) = (app.tenant("acme"), app.tenant("globex"));
    let email = "same@example.com";
    let a = login(&app, "acme", email).await;
    let g = login(&app, "globex", email).await;

    // A verification token issued in acme...
    let (status, _) = acme
        .request(
            Method::POST,
            "/verify-email/request",
            Some(access(&a)),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    acme_mail
        .wait_for_kind(EventKind::SendVerificationEmail, 1)
        .await;
    let verify = token_of(&acme_mail, EventKind::SendVerificationEmail);
    assert!(!verify.is_empty());
    // ...is refused in globex and in the default tenant, where the same email has an account...
    app.register(email).await;
    for (status, body) in [
        globex
            .post("/verify-email/confirm", json!({"token": verify}))
            .await,
        app.post("/verify-email/confirm", json!({"token": verify}))
            .await,
    ] {
        assert_unauthorized(status, &body);
    }
    let (_, me) = globex
        .request(Method::GET, "/me", Some(access(&g)), None)
        .await;
    assert_eq!(me["is_verified"], false, "{me}");
    // ...and still works in acme afterwards.
    let (status, body) = acme
        .post("/verify-email/confirm", json!({"token": verify}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, me) = acme
        .request(Method::GET, "/me", Some(access(&a)), None)
        .await;
    assert_eq!(me["is_verified"], true, "{me}");

    // The same for a password reset token.
    acme.post("/password-reset/request", json!({"email": email}))
        .await;
    acme_mail
        .wait_for_kind(EventKind::SendPasswordResetEmail, 1)
        .await;
    let reset = token_of(&acme_mail, EventKind::SendPasswordResetEmail);
    assert!(!reset.is_empty());
    for (status, body) in [
        globex
            .post(
                "/password-reset/confirm",
                json!({"token": reset, "new_password": "taken-over-1"}),
            )
            .await,
        app.post(
            "/password-reset/confirm",
            json!({"token": reset, "new_password": "taken-over-1"}),
        )
        .await,
    ] {
        assert_unauthorized(status, &body);
    }
    // globex's (and the default tenant's) password did not change.
    for creds_ok in [
        globex
            .post("/login", json!({"email": email, "password": PASSWORD}))
            .await,
        app.post("/login", json!({"email": email, "password": PASSWORD}))
            .await,
    ] {
        assert_eq!(creds_ok.0, StatusCode::OK, "{}", creds_ok.1);
    }
    let (status, body) = acme
        .post(
            "/password-reset/confirm",
            json!({"token": reset, "new_password": "acme-new-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = acme
        .post(
            "/login",
            json!({"email": email, "password": "acme-new-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
