//! The example hooks handle the OAuth events in the real server: the C audit hook and the
//! Python analytics hook deployed as an operator would, a local OpenID provider over loopback
//! HTTP, and a sign-up, a sign-in, a link and an unlink through the OAuth routes.

use serde_json::json;

use crate::build;
use crate::oauth_provider::{OidcProvider, ProviderUser};
use crate::server::{PASSWORD, Server};
use crate::support::HookDir;

const REDIRECT: &str = "https://app.example.com/oauth/callback";

#[tokio::test]
async fn example_hooks_see_oauth_sign_ups_sign_ins_links_and_unlinks() {
    let (python, c) = (build::python(), build::c());
    let provider = OidcProvider::start("hookauth", "client-secret").await;
    let dir = HookDir::new()
        .hook("10-audit-c", &c.bytes)
        .hook("40-analytics", &python.bytes)
        .manifest("[hooks.40-analytics]\nmemory_mib = 64\ntimeout_ms = 5000\n");
    let issuer = provider.issuer();
    let redirects = format!("[\"{REDIRECT}\"]");
    let server = Server::start(
        dir.dir.path(),
        &[
            ("HOOKAUTH_OAUTH__REDIRECT_URIS", redirects.as_str()),
            ("HOOKAUTH_OAUTH__PROVIDERS__CORP__KIND", "oidc"),
            ("HOOKAUTH_OAUTH__PROVIDERS__CORP__CLIENT_ID", "hookauth"),
            (
                "HOOKAUTH_OAUTH__PROVIDERS__CORP__CLIENT_SECRET",
                "client-secret",
            ),
            ("HOOKAUTH_OAUTH__PROVIDERS__CORP__ISSUER", issuer.as_str()),
        ],
    );
    let http = reqwest::Client::new();
    let start = |path: &'static str, bearer: Option<String>| {
        let http = http.clone();
        let url = format!("{}{path}?redirect_uri={REDIRECT}", server.base_url());
        async move {
            let mut request = http.get(url);
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            let started: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            started
        }
    };

    // Sign-up with the provider: after_oauth_login (new), after_register, after_oauth_register.
    let ada = ProviderUser::new("ada-sub", "ada@example.com", true);
    let started = start("/oauth/corp/authorize", None).await;
    let (code, state) = provider
        .authorize(started["authorization_url"].as_str().unwrap(), &ada)
        .await;
    let (status, body) = server
        .post(
            "/oauth/corp/callback",
            None,
            json!({"code": code, "state": state, "binding": started["binding"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap().to_owned();
    for kind in [
        "after_oauth_login",
        "after_register",
        "after_oauth_register",
    ] {
        server
            .wait_for_line(&[&format!("audit: {kind}"), "hook=\"10-audit-c\"", &user_id])
            .await;
    }
    let line = server
        .wait_for_line(&["analytics: login", "hook=\"40-analytics\"", &user_id])
        .await;
    assert!(line.contains(r#"\"method\":\"oauth\""#), "{line}");

    // Link a second account? One per provider: relinking the same one succeeds and is audited.
    let started = start("/oauth/corp/link/authorize", Some(access.clone())).await;
    let (code, state) = provider
        .authorize(started["authorization_url"].as_str().unwrap(), &ada)
        .await;
    let (status, body) = server
        .post(
            "/oauth/corp/link/callback",
            Some(&access),
            json!({"code": code, "state": state, "binding": started["binding"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server
        .wait_for_line(&["audit: after_oauth_link", "hook=\"10-audit-c\"", &user_id])
        .await;

    // Unlinking the only way in is refused; with a password set it is audited.
    let (status, body) = server.delete("/oauth/accounts/corp", &access).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .post(
            "/change-password",
            Some(&access),
            json!({"new_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let access = server.login("ada@example.com").await;
    let (status, body) = server.delete("/oauth/accounts/corp", &access).await;
    assert_eq!(status, 204, "{body}");
    server
        .wait_for_line(&["audit: after_oauth_unlink", "hook=\"10-audit-c\"", &user_id])
        .await;
}
