//! What an OAuth sign-in costs on the server, against a local OpenID provider over loopback
//! (tests/common/oauth_provider.rs, the one the tests use), beside a password login in the
//! same run and process: `GET /oauth/acme/authorize` (state, PKCE, discovery cached) and
//! `POST /oauth/acme/callback` (state check and use, token exchange, id_token verification
//! with the cached JWKS, account lookup, session and events in one transaction), for new and
//! returning users, sequentially (concurrency 1) on a fresh SQLite file.
//!
//! `cargo bench --bench oauth` prints p50/p99 per step. The provider's own time (RSA signing
//! of the id_token, ~1 ms) is inside the callback's figure, as it would be with a real one.
//! Under `cargo test` (no `--bench`) a short pass with the same checks.

#[path = "common/measure.rs"]
#[allow(dead_code, reason = "the bench uses only percentiles")]
mod measure;
#[path = "../tests/common/oauth_provider.rs"]
mod oauth_provider;
#[path = "common/server.rs"]
mod server;

use std::time::{Duration, Instant};

use measure::percentile;
use oauth_provider::{OidcProvider, ProviderUser};
use serde_json::{Value, json};
use server::BenchServer;

const REDIRECT: &str = "https://app.example.com/oauth/callback";
const PASSWORD: &str = "correct horse battery staple";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    println!(
        "oauth bench: {what:<34} n={:<4} p50 {:>7.2} ms  p99 {:>7.2} ms",
        samples.len(),
        ms(p50),
        ms(percentile(&samples, 0.99))
    );
    p50
}

async fn run(quick: bool) {
    let provider = OidcProvider::start("bench-client", "bench-secret").await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let redirects = format!("[\"{REDIRECT}\"]");
    let issuer = provider.issuer();
    let server = BenchServer::start(
        &format!("sqlite://{}", dir.path().join("db").display()),
        &hooks,
        &[
            ("HOOKAUTH_RATE_LIMIT__ENABLED", "false"),
            ("HOOKAUTH_OAUTH__REDIRECT_URIS", &redirects),
            ("HOOKAUTH_OAUTH__PROVIDERS__ACME__KIND", "oidc"),
            ("HOOKAUTH_OAUTH__PROVIDERS__ACME__CLIENT_ID", "bench-client"),
            (
                "HOOKAUTH_OAUTH__PROVIDERS__ACME__CLIENT_SECRET",
                "bench-secret",
            ),
            ("HOOKAUTH_OAUTH__PROVIDERS__ACME__ISSUER", &issuer),
        ],
    )
    .await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = http.post(format!("{base}{path}")).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };

    let users = if quick { 5 } else { 200 };
    let rounds = if quick { 5 } else { 300 };
    let (mut authorize, mut first, mut again) = (Vec::new(), Vec::new(), Vec::new());
    let sign_in =
        async |user: &ProviderUser, into: &mut Vec<Duration>, authorize: &mut Vec<Duration>| {
            let started = Instant::now();
            let answer: Value = http
                .get(format!(
                    "{base}/oauth/acme/authorize?redirect_uri={REDIRECT}"
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            authorize.push(started.elapsed());
            let (code, state) = provider
                .authorize(answer["authorization_url"].as_str().unwrap(), user)
                .await;
            let started = Instant::now();
            let (status, body) = post(
                "/oauth/acme/callback",
                json!({"code": code, "state": state, "binding": answer["binding"]}),
            )
            .await;
            into.push(started.elapsed());
            assert!(status.is_success(), "{status} {body}");
        };
    for i in 0..users {
        let user = ProviderUser::new(&format!("sub-{i}"), &format!("u{i}@example.com"), true);
        sign_in(&user, &mut first, &mut authorize).await;
    }
    for i in 0..rounds {
        let n = i % users;
        let user = ProviderUser::new(&format!("sub-{n}"), &format!("u{n}@example.com"), true);
        sign_in(&user, &mut again, &mut authorize).await;
    }
    // Password logins, same process and database, for scale (argon2 at the server's defaults).
    let creds = json!({"email": "pw@example.com", "password": PASSWORD});
    post("/register", creds.clone()).await;
    let mut login = Vec::new();
    for _ in 0..(if quick { 3 } else { 100 }) {
        let started = Instant::now();
        let (status, body) = post("/login", creds.clone()).await;
        login.push(started.elapsed());
        assert!(status.is_success(), "{status} {body}");
    }
    report("authorize", authorize);
    report("callback, new user (sign-up)", first);
    let returning = report("callback, returning user", again);
    let password = report("password login (argon2 defaults)", login);
    println!(
        "oauth bench: returning OAuth callback / password login = {:.2}",
        returning.as_secs_f64() / password.as_secs_f64()
    );
    server.stop().await;
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(quick));
}
