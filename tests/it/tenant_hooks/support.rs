//! Helpers of the tenant hook tests: a server with an operator token, multipart deploys,
//! tenant admins.

use std::time::{Duration, Instant};

use hookauth::domain::{Email, Password, TenantId};
use hookauth::flows;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, TestApp, send};

pub use crate::shared::OPERATOR;

/// Options with the operator token and tenant hooks allowed to reach `sink_port` on loopback.
pub fn options(sink_port: u16) -> Options {
    Options::default()
        .env("HOOKAUTH_OPERATOR_TOKEN", OPERATOR)
        .env(
            "HOOKAUTH_TENANT_HOOKS__ALLOWED_HOSTS",
            &format!("[\"127.0.0.1:{sink_port}\"]"),
        )
        .env("HOOKAUTH_DELIVERY__MAX_ATTEMPTS", "1")
}

pub async fn spawn(backend: Backend, options: Options) -> TestApp {
    TestApp::spawn_with(backend, options).await
}

/// `/api/v1{path}` for the default tenant, `/t/{tenant}/api/v1{path}` for another.
pub fn url(app: &TestApp, tenant: &str, path: &str) -> String {
    if tenant == TenantId::DEFAULT {
        format!("http://{}/api/v1{path}", app.addr)
    } else {
        format!("http://{}/t/{tenant}/api/v1{path}", app.addr)
    }
}

pub async fn call(
    app: &TestApp,
    method: Method,
    tenant: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    send(app.http(), method, url(app, tenant, path), token, body).await
}

/// A multipart body by hand: `component` and, when given, `manifest`.
pub fn multipart(component: &[u8], manifest: Option<&Value>) -> (String, Vec<u8>) {
    let boundary = "hookauth-test-boundary-7d2f";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"component\"; \
             filename=\"hook.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(component);
    body.extend_from_slice(b"\r\n");
    if let Some(m) = manifest {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\
                 Content-Type: application/json\r\n\r\n{m}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub async fn deploy(
    app: &TestApp,
    tenant: &str,
    name: &str,
    token: Option<&str>,
    component: &[u8],
    manifest: Option<Value>,
) -> (StatusCode, Value) {
    let (content_type, body) = multipart(component, manifest.as_ref());
    let mut req = app
        .http()
        .put(url(app, tenant, &format!("/hooks/{name}")))
        .header("content-type", content_type)
        // A refused upload is answered before its body is read, and the server then closes
        // the connection: never hand that connection back to the pool for the next request.
        .header("connection", "close")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let response = req.send().await.expect("server answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn create_tenant(app: &TestApp, name: &str) {
    let (status, body) = call(
        app,
        Method::POST,
        TenantId::DEFAULT,
        "/tenants",
        Some(OPERATOR),
        Some(json!({ "id": name })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

pub async fn put_secret(app: &TestApp, tenant: &str, key: &str, value: &str) {
    let (status, body) = call(
        app,
        Method::PUT,
        tenant,
        &format!("/hook-secrets/{key}"),
        Some(OPERATOR),
        Some(json!({ "value": value })),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
}

/// A superuser of `tenant`, logged in.
pub async fn superuser(app: &TestApp, tenant: &str, email: &str) -> String {
    let t = TenantId::parse(tenant).unwrap();
    flows::create_superuser(
        &app.flows,
        &t,
        Email::parse(email).unwrap(),
        Password::new(PASSWORD.into()),
    )
    .await
    .unwrap();
    login(app, tenant, email).await
}

pub async fn login(app: &TestApp, tenant: &str, email: &str) -> String {
    let creds = json!({"email": email, "password": PASSWORD});
    let prefix = if tenant == TenantId::DEFAULT {
        String::new()
    } else {
        format!("/t/{tenant}")
    };
    let base = format!("http://{}{prefix}/api/v1/auth", app.addr);
    send(
        app.http(),
        Method::POST,
        format!("{base}/register"),
        None,
        Some(creds.clone()),
    )
    .await;
    let (status, body) = send(
        app.http(),
        Method::POST,
        format!("{base}/login"),
        None,
        Some(creds),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

pub async fn register(app: &TestApp, tenant: &str, email: &str) -> StatusCode {
    let prefix = if tenant == TenantId::DEFAULT {
        String::new()
    } else {
        format!("/t/{tenant}")
    };
    send(
        app.http(),
        Method::POST,
        format!("http://{}{prefix}/api/v1/auth/register", app.addr),
        None,
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await
    .0
}

/// The welcome-email guest's manifest, sending to the sink with tenant secret `secret`.
pub fn mail_manifest(sink_port: u16, secret: &str, extra: Value) -> Value {
    let mut m = json!({
        "events": ["after_register"],
        "allowed_hosts": [format!("127.0.0.1:{sink_port}")],
        "config": { "url": format!("http://127.0.0.1:{sink_port}/send") },
        "secrets": { "api_key": secret },
    });
    if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

/// Waits until `check` holds (panics after `within`).
pub async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
