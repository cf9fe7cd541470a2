//! Cookie sessions (`[cookies]`, per tenant) with a real cookie jar: HttpOnly/SameSite cookies
//! from login, cookie-authenticated reads, the CSRF double submit on every state-changing
//! request a cookie authenticates, refresh and logout through the cookies, security headers.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, TestApp};
use crate::on_both_backends;
use hookauth::domain::TenantId;

on_both_backends!(
    a_browser_session_lives_in_cookies_behind_csrf,
    cookies_are_per_tenant_and_off_by_default,
);

/// A client with its own jar, as a browser would have.
struct Browser {
    http: reqwest::Client,
    jar: Arc<Jar>,
    base: String,
}

impl Browser {
    fn new(app: &TestApp, prefix: &str) -> Self {
        let jar = Arc::new(Jar::default());
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .cookie_provider(jar.clone())
                .build()
                .unwrap(),
            jar,
            base: format!("http://{}{prefix}/api/v1/auth", app.addr),
        }
    }

    /// A request with the jar's cookies, plus `csrf` as `X-CSRF-Token` if given.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, headers, value)
    }

    /// The cookie `name` the jar would send to `path`.
    fn cookie(&self, path: &str, name: &str) -> Option<String> {
        let url = Url::parse(&format!("{}{path}", self.base)).unwrap();
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }
}

fn set_cookie_line<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|line| line.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"))
}

async fn acme_with_cookies(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let mut options = Options::default()
        .env("HOOKAUTH_TENANTS__ACME__COOKIES__ENABLED", "true")
        // Plain HTTP on loopback: a Secure cookie would never come back. The default (Secure)
        // is asserted in `cookies_are_per_tenant_and_off_by_default`.
        .env("HOOKAUTH_TENANTS__ACME__COOKIES__SECURE", "false");
    for (k, v) in extra {
        options = options.env(k, v);
    }
    let app = TestApp::spawn_with(backend, options).await;
    app.flows
        .store
        .create_tenant(&TenantId::parse("acme").unwrap(), 0)
        .await
        .unwrap();
    app
}

async fn a_browser_session_lives_in_cookies_behind_csrf(backend: Backend) {
    let app = acme_with_cookies(backend, &[]).await;
    let browser = Browser::new(&app, "/t/acme");
    let email = "cookie@example.com";
    let (status, _, body) = browser
        .send(
            Method::POST,
            "/register",
            Some(json!({"email": email, "password": PASSWORD})),
            None,
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, headers, body) = browser
        .send(
            Method::POST,
            "/login",
            Some(json!({"email": email, "password": PASSWORD})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The refresh token never reaches page scripts.
    assert_eq!(body["refresh_token"], Value::Null, "{body}");
    let access = set_cookie_line(&headers, "hookauth_access");
    assert!(access.contains("HttpOnly"), "{access}");
    assert!(access.contains("SameSite=Lax"), "{access}");
    assert!(access.contains("Path=/;"), "{access}");
    assert!(!access.contains("Secure"), "{access}");
    let refresh = set_cookie_line(&headers, "hookauth_refresh");
    assert!(refresh.contains("HttpOnly"), "{refresh}");
    assert!(refresh.contains("Path=/t/acme/api/v1/auth;"), "{refresh}");
    let csrf_line = set_cookie_line(&headers, "hookauth_csrf");
    assert!(
        !csrf_line.contains("HttpOnly"),
        "the page reads it: {csrf_line}"
    );
    let csrf = browser.cookie("/me", "hookauth_csrf").expect("csrf cookie");
    assert!(browser.cookie("/me", "hookauth_refresh").is_some());

    // Reads: the cookie alone authenticates.
    let (status, headers, body) = browser.send(Method::GET, "/me", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], email);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers.contains_key("content-security-policy"));

    // A state-changing request authenticated by the cookie needs the CSRF token: a cross-site
    // form would carry the cookies but could not read or send it.
    let (status, _, body) = browser
        .send(Method::POST, "/verify-email/request", None, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "csrf_failed");
    let (status, _, body) = browser
        .send(Method::POST, "/verify-email/request", None, Some("forged"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "csrf_failed");
    // A planted cookie with a matching header (cookie tossing from a sibling domain) is not
    // ours: the value must carry the server's signature.
    let planted = Browser::new(&app, "/t/acme");
    let url = Url::parse(&format!("http://{}/", app.addr)).unwrap();
    let stolen_access = browser.cookie("/me", "hookauth_access").unwrap();
    planted
        .jar
        .add_cookie_str(&format!("hookauth_access={stolen_access}; Path=/"), &url);
    planted
        .jar
        .add_cookie_str("hookauth_csrf=abc.def; Path=/", &url);
    let (status, _, body) = planted
        .send(Method::POST, "/verify-email/request", None, Some("abc.def"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // With the real token it passes.
    let (status, _, body) = browser
        .send(Method::POST, "/verify-email/request", None, Some(&csrf))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // DELETE and PATCH are state-changing too.
    let (status, _, body) = browser
        .send(
            Method::PATCH,
            "/me",
            Some(json!({"display_name": "Cookie"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = browser
        .send(
            Method::PATCH,
            "/me",
            Some(json!({"display_name": "Cookie"})),
            Some(&csrf),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Refresh through the cookie: CSRF needed, new cookies set, the old refresh token spent.
    let old_refresh = browser.cookie("/refresh", "hookauth_refresh").unwrap();
    let (status, _, body) = browser.send(Method::POST, "/refresh", None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, headers, body) = browser
        .send(Method::POST, "/refresh", None, Some(&csrf))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["refresh_token"], Value::Null);
    set_cookie_line(&headers, "hookauth_access");
    let new_refresh = browser.cookie("/refresh", "hookauth_refresh").unwrap();
    assert_ne!(old_refresh, new_refresh);
    let csrf = browser.cookie("/me", "hookauth_csrf").unwrap();
    let (status, _, body) = browser.send(Method::GET, "/me", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A bearer client is not subject to CSRF (no ambient credential).
    let bearer = body_token(&app, email).await;
    let (status, body) = app
        .tenant("acme")
        .request(Method::POST, "/verify-email/request", Some(&bearer), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // Logout through the cookies: CSRF needed; then every cookie is expired and the session
    // is over.
    let (status, _, _) = browser.send(Method::POST, "/logout", None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = browser
        .send(Method::POST, "/logout", None, Some(&csrf))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for name in ["hookauth_access", "hookauth_refresh", "hookauth_csrf"] {
        assert!(set_cookie_line(&headers, name).contains("Max-Age=0"));
    }
    assert!(browser.cookie("/me", "hookauth_access").is_none());
    let (status, _, _) = browser.send(Method::GET, "/me", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The access token the cookie held is revoked too (not merely forgotten by the jar).
    let (status, _) = app
        .tenant("acme")
        .request(Method::GET, "/me", Some(&stolen_access), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Signs in again through the JSON transport (a second session) and returns its access token.
async fn body_token(app: &TestApp, email: &str) -> String {
    let (status, body) = app
        .tenant("acme")
        .post("/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn cookies_are_per_tenant_and_off_by_default(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options::default()
            .env("HOOKAUTH_TENANTS__ACME__COOKIES__ENABLED", "true")
            .env("HOOKAUTH_TENANTS__ACME__COOKIES__SAME_SITE", "strict"),
    )
    .await;
    app.flows
        .store
        .create_tenant(&TenantId::parse("acme").unwrap(), 0)
        .await
        .unwrap();
    // The default tenant: JSON transport only, cookies ignored.
    let browser = Browser::new(&app, "");
    let email = "plain@example.com";
    app.register(email).await;
    let (status, headers, body) = browser
        .send(
            Method::POST,
            "/login",
            Some(json!({"email": email, "password": PASSWORD})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.get(SET_COOKIE).is_none(), "{headers:?}");
    assert!(body["refresh_token"].is_string());
    let access = body["access_token"].as_str().unwrap().to_owned();
    let url = Url::parse(&format!("http://{}/", app.addr)).unwrap();
    browser
        .jar
        .add_cookie_str(&format!("hookauth_access={access}; Path=/"), &url);
    let (status, _, _) = browser.send(Method::GET, "/me", None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "cookies count only where enabled"
    );

    // acme: cookies with the secure defaults (Secure) and its own SameSite.
    let (status, _) = app
        .tenant("acme")
        .post("/register", json!({"email": email, "password": PASSWORD}))
        .await;
    assert!(status.is_success());
    let acme = Browser::new(&app, "/t/acme");
    let (status, headers, body) = acme
        .send(
            Method::POST,
            "/login",
            Some(json!({"email": email, "password": PASSWORD})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let line = set_cookie_line(&headers, "hookauth_access");
    assert!(line.contains("; Secure"), "{line}");
    assert!(line.contains("SameSite=Strict"), "{line}");
    assert!(line.contains("HttpOnly"), "{line}");
}
