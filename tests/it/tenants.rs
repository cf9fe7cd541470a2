//! Tenant isolation: users, tokens and events belong to exactly one tenant.

use hookauth::domain::TenantId;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_unauthorized};
use crate::on_both_backends;

on_both_backends!(tenants_are_isolated, unknown_tenants_are_404);

async fn tenants_are_isolated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in ["acme", "globex"] {
        app.flows
            .store
            .create_tenant(&TenantId::parse(name).unwrap(), 0)
            .await
            .unwrap();
    }
    let acme = app.tenant("acme");
    let globex = app.tenant("globex");
    let creds = json!({"email": "same@example.com", "password": PASSWORD});
    assert_eq!(
        acme.post("/register", creds.clone()).await.0,
        StatusCode::ACCEPTED
    );
    let (status, login) = acme.post("/login", creds.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let access = login["access_token"].as_str().unwrap();

    // A user of acme cannot log in to globex or to the default tenant.
    let (status, body) = globex.post("/login", creds.clone()).await;
    assert_unauthorized(status, &body);
    let (status, body) = app.post("/login", creds.clone()).await;
    assert_unauthorized(status, &body);
    // acme's tokens get 401 elsewhere.
    let (status, body) = globex.request(Method::GET, "/me", Some(access), None).await;
    assert_unauthorized(status, &body);
    let (status, body) = app.get("/me", access).await;
    assert_unauthorized(status, &body);
    let (status, body) = globex
        .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await;
    assert_unauthorized(status, &body);
    assert_eq!(
        acme.request(Method::GET, "/me", Some(access), None).await.0,
        StatusCode::OK
    );

    // The same email is a separate account in globex.
    assert_eq!(
        globex.post("/register", creds.clone()).await.0,
        StatusCode::ACCEPTED
    );
    let (status, g) = globex.post("/login", creds).await;
    assert_eq!(status, StatusCode::OK, "{g}");
    let (globex_id, acme_id) = (g["user"]["id"].as_str(), login["user"]["id"].as_str());
    assert!(globex_id.is_some() && acme_id.is_some(), "{g} {login}");
    assert_ne!(globex_id, acme_id);

    // Events are recorded under their tenant; the default tenant's handlers see none of them.
    let stored = app
        .flows
        .store
        .events_of_tenant(&TenantId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "acme: after_register and after_login");
    let tenants = ["acme", "globex"].map(|t| TenantId::parse(t).unwrap());
    let deliveries = app.settle_tenants(&tenants).await;
    assert!(
        deliveries.is_empty(),
        "no hooks, no deliveries: {deliveries:?}"
    );
    app.settle().await;
    assert_eq!(app.recorder.count(), 0);
}

async fn unknown_tenants_are_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app.tenant("nosuch").post("/login", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "unknown_tenant");
    let (status, body) = app.tenant("Bad_Name").post("/login", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "unknown_tenant");
}
