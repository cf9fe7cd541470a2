//! The gate examples (world `gate-hook` of wit/v0.2.0), each built with its real toolchain,
//! deployed with its hooks.toml entry in the real server's hooks directory and driven over HTTP:
//! deny-disposable-email and breached-password (Rust), role-by-domain (JavaScript, QuickJS) and
//! claims (Python). Each test checks an outcome only the gate can produce (a 403 with the
//! gate's message, a role or a token claim from its config or its API), so it fails if the
//! server ignored the gate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::build;
use crate::server::{PASSWORD, Server};
use crate::shared::guest;
use crate::support::HookDir;

/// Register answers 201 with the new user instead of 202 for every address (enumeration
/// protection off), so a test sees which registrations created an account; no rate limits, as
/// a test registers more than 3 times a minute from one address.
const ENV: &[(&str, &str)] = &[
    (
        "HOOKAUTH_SECURITY__PREVENT_REGISTRATION_ENUMERATION",
        "false",
    ),
    ("HOOKAUTH_RATE_LIMIT__ENABLED", "false"),
];

async fn register(server: &Server, email: &str, password: &str) -> (u16, Value) {
    server
        .post(
            "/register",
            None,
            json!({"email": email, "password": password}),
        )
        .await
}

async fn login_status(server: &Server, email: &str, password: &str) -> u16 {
    let body = json!({"email": email, "password": password});
    server.post("/login", None, body).await.0
}

/// A gate's refusal: 403 `denied_by_hook` with the gate's message, and its code if it gave one.
fn assert_denied(status: u16, body: &Value, detail: &str, hook_code: Option<&str>) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "denied_by_hook", "{body}");
    assert_eq!(body["detail"], detail, "{body}");
    assert_eq!(
        body.get("hook_code").and_then(Value::as_str),
        hook_code,
        "{body}"
    );
}

/// The payload of a JWT (its middle part).
fn token_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A request the local API received.
#[derive(Clone, Debug)]
struct ApiRequest {
    method: String,
    /// Path and query, as sent.
    uri: String,
    /// Every header, as `name: value` lines.
    headers: String,
    body: Vec<u8>,
}

/// A local HTTP API on 127.0.0.1 standing in for a gate's third-party service: answers every
/// request with `answer(path)` and records everything it was sent.
struct Api {
    port: u16,
    requests: Arc<Mutex<Vec<ApiRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Api {
    async fn start(answer: impl Fn(&str) -> (StatusCode, String) + Send + Sync + 'static) -> Self {
        let answer = Arc::new(answer);
        let requests: Arc<Mutex<Vec<ApiRequest>>> = Arc::default();
        let record = Arc::clone(&requests);
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (answer, record) = (Arc::clone(&answer), Arc::clone(&record));
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                let headers = parts
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
                    .collect();
                record.lock().unwrap().push(ApiRequest {
                    method: parts.method.to_string(),
                    uri: parts.uri.to_string(),
                    headers,
                    body: body.to_vec(),
                });
                answer(parts.uri.path())
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            port,
            requests,
            task,
        }
    }

    fn requests(&self) -> Vec<ApiRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn disposable_email_gate_refuses_throwaway_domains_and_creates_no_user() {
    let dir = HookDir::new()
        .hook("10-deny-disposable", &guest("deny-disposable-email"))
        .manifest(
            r#"
            [hooks.10-deny-disposable]
            config = { extra_domains = "junk.example.net, .spam.example.org" }
            "#,
        );
    let server = Server::start(dir.dir.path(), ENV);

    // Listed; a subdomain of a listed one (the address as typed: the server normalises it);
    // from extra_domains, with and without a leading dot.
    for email in [
        "eve@mailinator.com",
        "Eve@Inbox.YopMail.com",
        "eve@junk.example.net",
        "eve@spam.example.org",
    ] {
        let (status, body) = register(&server, email, PASSWORD).await;
        assert_denied(
            status,
            &body,
            "Sign-ups from disposable email addresses are not allowed",
            Some("disposable_email"),
        );
        assert_eq!(
            login_status(&server, email, PASSWORD).await,
            401,
            "{email}: a denied registration creates no user"
        );
    }

    // A domain that only ends like a listed one is not its subdomain.
    for email in ["ada@example.com", "bob@notmailinator.com"] {
        let (status, body) = register(&server, email, PASSWORD).await;
        assert_eq!(status, 201, "{email}: {body}");
        assert_eq!(login_status(&server, email, PASSWORD).await, 200, "{email}");
    }
}

/// The password the local range API lists as breached, and its SHA-1
/// (`printf %s 'Tr0ub4dor&3' | sha1sum`, upper case) split at the k-anonymity prefix.
const BREACHED: &str = "Tr0ub4dor&3";
const BREACHED_PREFIX: &str = "87457";
const BREACHED_SUFFIX: &str = "2E7A5AE6A49466A6AC578B98ADBA78C6AA6";
/// [`PASSWORD`]'s SHA-1 split the same way: the API lists it with count 0 (a padding line).
const SAFE_PREFIX: &str = "F9797";
const SAFE_SUFFIX: &str = "9FF44A9A1A4105F4BAE6FE809715E0A0A84";

#[tokio::test]
async fn breached_password_gate_refuses_listed_passwords_sending_only_a_hash_prefix() {
    let down = Arc::new(AtomicBool::new(false));
    let api_down = Arc::clone(&down);
    // The api.pwnedpasswords.com format: SUFFIX:COUNT lines, CRLF, padded with count-0 lines.
    let api = Api::start(move |path| {
        if api_down.load(Ordering::SeqCst) {
            return (StatusCode::SERVICE_UNAVAILABLE, "down".into());
        }
        let lines = match path.strip_prefix("/range/") {
            Some(BREACHED_PREFIX) => format!(
                "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n{BREACHED_SUFFIX}:42\r\n\
                 FFFFF45C4D1DEF81644B54AB7F969B88D65:0"
            ),
            Some(SAFE_PREFIX) => format!(
                "0018A45C4D1DEF81644B54AB7F969B88D65:3\r\n{SAFE_SUFFIX}:0\r\n\
                 FFFFF45C4D1DEF81644B54AB7F969B88D65:0"
            ),
            _ => return (StatusCode::NOT_FOUND, "unexpected path".into()),
        };
        (StatusCode::OK, lines)
    })
    .await;
    let dir = HookDir::new()
        .hook("20-breached-password", &guest("breached-password"))
        .manifest(&format!(
            r#"
            [hooks.20-breached-password]
            allowed_hosts = ["127.0.0.1:{port}"]
            config = {{ url = "http://127.0.0.1:{port}" }}
            gate_timeout_ms = 2000
            "#,
            port = api.port
        ));
    let server = Server::start(dir.dir.path(), ENV);
    let denial = "This password has appeared in a data breach; choose another";

    // Register with a breached password: refused, no user.
    let (status, body) = register(&server, "eve@example.com", BREACHED).await;
    assert_denied(status, &body, denial, None);
    assert_eq!(
        login_status(&server, "eve@example.com", BREACHED).await,
        401
    );

    // A password listed only as padding (count 0) is not breached.
    let (status, body) = register(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 201, "{body}");

    // Changing to a breached password is refused too; the old one keeps working.
    let access = server.login("ada@example.com").await;
    let (status, body) = server
        .post(
            "/change-password",
            Some(&access),
            json!({"current_password": PASSWORD, "new_password": BREACHED}),
        )
        .await;
    assert_denied(status, &body, denial, None);
    assert_eq!(
        login_status(&server, "ada@example.com", PASSWORD).await,
        200
    );

    // The API failing: the gate fails open, with a warning in the log.
    down.store(true, Ordering::SeqCst);
    let (status, body) = register(&server, "bob@example.com", BREACHED).await;
    assert_eq!(status, 201, "{body}");
    server
        .wait_for_line(&[
            "breached-password: range API unavailable, password allowed",
            "503",
        ])
        .await;

    // Only 5-hex-character prefixes ever left the server: never the password nor its hash.
    let requests = api.requests();
    let prefixes: Vec<_> = requests
        .iter()
        .map(|r| r.uri.strip_prefix("/range/").unwrap_or(r.uri.as_str()))
        .collect();
    assert_eq!(
        prefixes,
        [
            BREACHED_PREFIX,
            SAFE_PREFIX,
            BREACHED_PREFIX,
            BREACHED_PREFIX
        ],
        "{requests:?}"
    );
    for request in &requests {
        assert_eq!(request.method, "GET", "{request:?}");
        assert!(request.body.is_empty(), "{request:?}");
        let sent = format!("{} {}", request.uri, request.headers).to_uppercase();
        for secret in [BREACHED, PASSWORD, BREACHED_SUFFIX, SAFE_SUFFIX] {
            assert!(!sent.contains(&secret.to_uppercase()), "{request:?}");
        }
    }
    // The server's log has neither the password nor its hash either.
    let log = server.log().to_uppercase();
    for secret in [BREACHED, BREACHED_SUFFIX] {
        assert!(!log.contains(&secret.to_uppercase()), "{secret} logged");
    }
}

#[tokio::test]
async fn role_by_domain_gate_assigns_the_role_of_the_email_domain() {
    let component = build::js_role_by_domain();
    let dir = HookDir::new()
        .hook("30-role-by-domain", &component.bytes)
        .manifest(
            r#"
            [hooks.30-role-by-domain]
            memory_mib = 64
            gate_fuel = 100_000_000
            gate_timeout_ms = 500
            config = { roles = '{"example.com": "staff", "partner.example.net": "partner"}' }
            "#,
        );
    let server = Server::start(dir.dir.path(), ENV);

    // A gate may only assign existing roles: a superuser creates `staff` by assigning it
    // (to themselves). `partner` is never created, and no test address uses its domain.
    server.create_superuser("root@example.org");
    let root = server.login("root@example.org").await;
    let root_id = server.me(&root).await;
    let (status, body) = server
        .post(
            "/admin/assign-role",
            Some(&root),
            json!({"user_id": root_id, "role": "staff"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    for (email, roles) in [
        ("ada@example.com", json!(["staff"])),
        // The domain must match exactly.
        ("bob@dev.example.com", json!([])),
        ("eve@example.org", json!([])),
    ] {
        let (status, body) = register(&server, email, PASSWORD).await;
        assert_eq!(status, 201, "{email}: {body}");
        let access = server.login(email).await;
        let (status, me) = server.get("/me", &access).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["roles"], roles, "{email}: {me}");
    }
}

#[tokio::test]
async fn claims_gate_adds_the_api_claims_to_access_tokens_at_login_and_refresh() {
    let component = build::python_claims();
    let api = Api::start(|path| {
        if path.starts_with("/claims/") {
            (StatusCode::OK, r#"{"plan": "pro", "seats": 5}"#.into())
        } else {
            (StatusCode::NOT_FOUND, "unexpected path".into())
        }
    })
    .await;
    let dir = HookDir::new()
        .hook("40-claims", &component.bytes)
        .manifest(&format!(
            r#"
            [hooks.40-claims]
            memory_mib = 64
            gate_fuel = 500_000_000
            gate_timeout_ms = 2000
            allowed_hosts = ["127.0.0.1:{port}"]
            config = {{ url = "http://127.0.0.1:{port}" }}
            "#,
            port = api.port
        ));
    let server = Server::start(dir.dir.path(), ENV);

    let (status, user) = register(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 201, "{user}");
    let user_id = user["id"].as_str().unwrap();

    let (status, login) = server
        .post(
            "/login",
            None,
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let (status, refreshed) = server
        .post(
            "/refresh",
            None,
            json!({"refresh_token": login["refresh_token"]}),
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");

    for (grant, pair) in [("login", &login), ("refresh", &refreshed)] {
        let claims = token_claims(pair["access_token"].as_str().unwrap());
        assert_eq!(claims["sub"], user_id, "{grant}: {claims}");
        assert_eq!(claims["extra"]["plan"], "pro", "{grant}: {claims}");
        assert_eq!(claims["extra"]["seats"], 5, "{grant}: {claims}");
    }
    // One lookup per token signed, for the token's user.
    let requests = api.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for request in &requests {
        assert_eq!(request.method, "GET", "{request:?}");
        assert_eq!(request.uri, format!("/claims/{user_id}"), "{request:?}");
    }
}
