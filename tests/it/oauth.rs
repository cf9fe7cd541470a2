//! Sign-in with OAuth / OpenID Connect, on both backends, against real providers over
//! loopback HTTP (tests/common/oauth_provider.rs): an OpenID provider with discovery, a JWKS
//! of keys generated at start, authorize, token and userinfo endpoints; and a GitHub-like
//! provider without id_tokens. Every route, every refusal.

use std::collections::HashMap;
use std::time::Duration;

use hookauth::domain::{EventKind, EventPayload, TenantId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, TestApp, assert_unauthorized, send};
use crate::oauth_provider::{GithubLikeProvider, Misbehaviour, OidcProvider, ProviderUser};
use crate::on_both_backends;
use crate::shared::OPERATOR;

on_both_backends!(
    a_new_user_signs_up_then_returns_as_the_same_user,
    a_verified_email_links_an_existing_account_and_an_unverified_one_never_does,
    the_github_kind_takes_the_verified_primary_address,
    a_state_is_signed_single_use_short_lived_and_bound_to_its_client,
    redirect_uris_are_matched_exactly_and_unknown_providers_are_404,
    provider_failures_answer_oauth_failed_without_leaking_the_answer,
    forged_id_tokens_are_refused,
    signed_in_users_link_and_unlink_providers_but_keep_a_way_in,
    tenants_have_their_own_providers_and_accounts,
    a_tenant_admin_manages_providers_through_the_api,
    two_callbacks_with_one_state_sign_in_once,
    two_unlinks_at_once_leave_a_way_in,
    unverified_addresses_sign_up_only_where_allowed,
);

const CLIENT_ID: &str = "hookauth-test-client";
const CLIENT_SECRET: &str = "provider-client-secret";
const REDIRECT: &str = "https://app.example.com/oauth/callback";
const FAILED: &str = "OAuth authentication failed";

/// Environment configuring `name` as an OIDC provider of the section `prefix`
/// (`HOOKAUTH_OAUTH` or `HOOKAUTH_TENANTS__ACME__OAUTH`).
fn oidc_env(prefix: &str, name: &str, provider: &OidcProvider) -> Vec<(String, String)> {
    let p = format!("{prefix}__PROVIDERS__{}", name.to_uppercase());
    vec![
        (
            format!("{prefix}__REDIRECT_URIS"),
            format!("[\"{REDIRECT}\"]"),
        ),
        (format!("{p}__KIND"), "oidc".into()),
        (format!("{p}__CLIENT_ID"), CLIENT_ID.into()),
        (format!("{p}__CLIENT_SECRET"), CLIENT_SECRET.into()),
        (format!("{p}__ISSUER"), provider.issuer()),
    ]
}

fn github_env(name: &str, provider: &GithubLikeProvider) -> Vec<(String, String)> {
    let p = format!("HOOKAUTH_OAUTH__PROVIDERS__{}", name.to_uppercase());
    vec![
        (format!("{p}__KIND"), "github".into()),
        (format!("{p}__CLIENT_ID"), CLIENT_ID.into()),
        (format!("{p}__CLIENT_SECRET"), CLIENT_SECRET.into()),
        (
            format!("{p}__AUTHORIZE_URL"),
            provider.url("/login/oauth/authorize"),
        ),
        (
            format!("{p}__TOKEN_URL"),
            provider.url("/login/oauth/access_token"),
        ),
        (format!("{p}__USERINFO_URL"), provider.url("/user")),
    ]
}

async fn app_with(backend: Backend, env: Vec<(String, String)>) -> TestApp {
    let mut options = Options::default();
    options.env.extend(env);
    TestApp::spawn_with(backend, options).await
}

/// An app whose default tenant has the OIDC provider `acme`.
async fn oidc_app(backend: Backend) -> (TestApp, OidcProvider) {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = app_with(backend, oidc_env("HOOKAUTH_OAUTH", "acme", &provider)).await;
    (app, provider)
}

/// `GET /oauth/{provider}/authorize` (or `/link/authorize` with a token) with the allowed
/// redirect URI: `{authorization_url, binding}`, or the refusal.
async fn authorize(
    start_url: &str,
    http: &reqwest::Client,
    token: Option<&str>,
) -> (StatusCode, Value) {
    get_json(&format!("{start_url}?redirect_uri={REDIRECT}"), http, token).await
}

/// A GET with an optional bearer token: the status and the JSON body (null if none).
async fn get_json(url: &str, http: &reqwest::Client, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The browser part of a sign-in: authorize at hookauth, sign in at the provider as `user`.
/// Returns the callback body (code, state, binding).
async fn start_sign_in(app: &TestApp, provider: &OidcProvider, user: &ProviderUser) -> Value {
    let (status, started) = authorize(&app.url("/oauth/acme/authorize"), app.http(), None).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let url = started["authorization_url"].as_str().unwrap();
    let (code, state) = provider.authorize(url, user).await;
    json!({"code": code, "state": state, "binding": started["binding"]})
}

async fn sign_in(
    app: &TestApp,
    provider: &OidcProvider,
    user: &ProviderUser,
) -> (StatusCode, Value) {
    let body = start_sign_in(app, provider, user).await;
    app.post("/oauth/acme/callback", body).await
}

/// Links `who`'s account at provider `name` to the user of `token`: link/authorize, the
/// provider, link/callback. Returns the callback's answer.
async fn link(
    app: &TestApp,
    provider: &OidcProvider,
    name: &str,
    token: &str,
    who: &ProviderUser,
) -> (StatusCode, Value) {
    let (status, started) = authorize(
        &app.url(&format!("/oauth/{name}/link/authorize")),
        app.http(),
        Some(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let (code, state) = provider
        .authorize(started["authorization_url"].as_str().unwrap(), who)
        .await;
    let body = json!({"code": code, "state": state, "binding": started["binding"]});
    app.request(
        Method::POST,
        &format!("/oauth/{name}/link/callback"),
        Some(token),
        Some(body),
    )
    .await
}

fn assert_failed(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body,
        &json!({"detail": FAILED, "code": "oauth_failed"}),
        "a client learns nothing but the failure"
    );
}

fn query_of(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A connection to the app's database, to look at or change rows no route exposes.
async fn db(app: &TestApp) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap()
}

/// Accounts of the default tenant.
async fn user_count(app: &TestApp) -> usize {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE tenant_id = 'default'")
        .fetch_one(&mut db(app).await)
        .await
        .unwrap();
    n as usize
}

async fn a_new_user_signs_up_then_returns_as_the_same_user(backend: Backend) {
    let (app, provider) = oidc_app(backend).await;
    let (status, body) = app
        .request(Method::GET, "/oauth/providers", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"providers": ["acme"]}));

    // The authorization URL carries PKCE S256 and the OIDC nonce; the binding stays with the
    // client (it is not in the URL).
    let (status, started) = authorize(&app.url("/oauth/acme/authorize"), app.http(), None).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let url = started["authorization_url"].as_str().unwrap();
    assert!(url.starts_with(&provider.url("/authorize")), "{url}");
    let query = query_of(url);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert_eq!(query["redirect_uri"], REDIRECT);
    assert_eq!(query["client_id"], CLIENT_ID);
    assert!(query["scope"].split(' ').any(|s| s == "openid"));
    let binding = started["binding"].as_str().unwrap();
    assert!(binding.len() >= 32);
    assert!(!url.contains(binding));

    let alice = ProviderUser {
        name: Some("Alice A.".into()),
        picture: Some("https://pics.example/alice.png".into()),
        ..ProviderUser::new("alice-sub", "Alice@Example.com", true)
    };
    let (code, state) = provider.authorize(url, &alice).await;
    let (status, body) = app
        .post(
            "/oauth/acme/callback",
            json!({"code": code, "state": state, "binding": binding}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["user"]["email"], "alice@example.com");
    assert_eq!(body["user"]["is_verified"], true);
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap().to_owned();

    // The PKCE verifier reached the provider (it checked it against the challenge) in the
    // body, not in a URL; the client secret never travels in a URL either.
    let token_calls: Vec<_> = provider
        .requests()
        .into_iter()
        .filter(|r| r.path == "/token")
        .collect();
    assert_eq!(token_calls.len(), 1);
    assert!(token_calls[0].body.contains("code_verifier="));
    assert!(
        provider
            .requests()
            .iter()
            .all(|r| !r.query.contains(CLIENT_SECRET))
    );

    // A real session: /me, refresh, and the accounts list.
    let (status, me) = app.get("/me", &access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], user_id);
    let (status, refreshed) = app
        .post("/refresh", json!({"refresh_token": body["refresh_token"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let (status, accounts) = app.get("/oauth/accounts", &access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        accounts,
        json!([{"provider": "acme", "provider_user_id": "alice-sub",
                "provider_email": "Alice@Example.com"}])
    );
    // A passwordless account cannot sign in with a password.
    let (status, body) = app
        .post(
            "/login",
            json!({"email": "alice@example.com", "password": PASSWORD}),
        )
        .await;
    assert_unauthorized(status, &body);

    // Returning: the same account, not a new one.
    let (status, again) = sign_in(&app, &provider, &alice).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["user"]["id"], user_id);
    assert_eq!(user_count(&app).await, 1);

    // Events, through the outbox, in the model's order.
    app.settle().await;
    let kinds: Vec<EventKind> = app.recorder.kinds();
    assert_eq!(
        kinds,
        [
            EventKind::AfterOauthLogin,
            EventKind::AfterRegister,
            EventKind::AfterOauthRegister,
            EventKind::AfterOauthLogin,
        ]
    );
    let events = app.recorder.events.lock().unwrap().clone();
    match &events[0].payload {
        EventPayload::AfterOauthLogin {
            provider,
            is_new_user,
            user,
        } => {
            assert_eq!(provider, "acme");
            assert!(is_new_user);
            assert_eq!(user.id, user_id);
        }
        other => panic!("{other:?}"),
    }
    match &events[2].payload {
        EventPayload::AfterOauthRegister { user_info, .. } => {
            assert_eq!(user_info.subject, "alice-sub");
            assert_eq!(user_info.email.as_deref(), Some("Alice@Example.com"));
            assert!(user_info.email_verified);
            assert_eq!(user_info.name.as_deref(), Some("Alice A."));
            assert_eq!(
                user_info.picture.as_deref(),
                Some("https://pics.example/alice.png")
            );
        }
        other => panic!("{other:?}"),
    }
    match &events[3].payload {
        EventPayload::AfterOauthLogin { is_new_user, .. } => assert!(!is_new_user),
        other => panic!("{other:?}"),
    }
    // No after_login: that is for password sign-ins.
    assert_eq!(app.recorder.count_of(EventKind::AfterLogin), 0);
}

async fn a_verified_email_links_an_existing_account_and_an_unverified_one_never_does(
    backend: Backend,
) {
    let (app, provider) = oidc_app(backend).await;
    let login = app.login("bob@example.com").await;
    let bob_id = login["user"]["id"].as_str().unwrap().to_owned();

    // Someone claims bob's address at a provider that did not verify it: refused, nothing
    // linked, no account created.
    let claimer = ProviderUser::new("claimer", "bob@example.com", false);
    let (status, body) = sign_in(&app, &provider, &claimer).await;
    assert_failed(status, &body);
    let access = login["access_token"].as_str().unwrap();
    assert_eq!(app.get("/oauth/accounts", access).await.1, json!([]));

    // The provider verified it: linked to bob's account (the address compared as stored:
    // case folded).
    let bob = ProviderUser::new("bob-sub", "bob@EXAMPLE.com", true);
    let (status, body) = sign_in(&app, &provider, &bob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], bob_id);
    assert_eq!(
        app.get("/oauth/accounts", access).await.1[0]["provider_user_id"],
        "bob-sub"
    );
    // The password still works.
    let (status, _) = app
        .post(
            "/login",
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user_count(&app).await, 1);

    // A second account at the same provider with bob's verified address cannot attach itself
    // too (one account per provider per user).
    let twin = ProviderUser::new("bob-twin", "bob@example.com", true);
    let (status, body) = sign_in(&app, &provider, &twin).await;
    assert_failed(status, &body);

    // A deactivated account does not sign in through its provider either.
    sqlx::query("UPDATE users SET is_active = 0 WHERE id = $1")
        .bind(&bob_id)
        .execute(&mut db(&app).await)
        .await
        .unwrap();
    let (status, body) = sign_in(&app, &provider, &bob).await;
    assert_failed(status, &body);
    app.settle().await;
    assert_eq!(app.recorder.count_of(EventKind::AfterOauthLogin), 1);
    assert_eq!(app.recorder.count_of(EventKind::AfterOauthRegister), 0);
}

async fn the_github_kind_takes_the_verified_primary_address(backend: Backend) {
    let provider = GithubLikeProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let mut env = vec![(
        "HOOKAUTH_OAUTH__REDIRECT_URIS".to_owned(),
        format!("[\"{REDIRECT}\"]"),
    )];
    env.extend(github_env("github", &provider));
    let app = app_with(backend, env).await;

    let sign_in = |user: ProviderUser| {
        let app = &app;
        let provider = &provider;
        async move {
            let (status, started) =
                authorize(&app.url("/oauth/github/authorize"), app.http(), None).await;
            assert_eq!(status, StatusCode::OK, "{started}");
            let url = started["authorization_url"].as_str().unwrap();
            assert!(!query_of(url).contains_key("response_type"), "{url}");
            assert_eq!(query_of(url)["code_challenge_method"], "S256");
            let (code, state) = provider.authorize(url, &user).await;
            app.post(
                "/oauth/github/callback",
                json!({"code": code, "state": state, "binding": started["binding"]}),
            )
            .await
        }
    };

    // The public profile address is not the verified primary one: the primary is used.
    let octo = ProviderUser::new("583231", "public@example.com", false);
    provider.set_emails(
        "583231",
        vec![
            ("public@example.com".into(), false, false),
            ("octo@example.com".into(), true, true),
        ],
    );
    let (status, body) = sign_in(octo).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], "octo@example.com");
    assert_eq!(body["user"]["is_verified"], true);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/oauth/accounts", access).await.1,
        json!([{"provider": "github", "provider_user_id": "583231",
                "provider_email": "octo@example.com"}])
    );

    // Without a verified address the profile's is used unverified: it creates an unverified
    // account, and never links to an existing one.
    app.login("taken@example.com").await;
    let unverified = ProviderUser::new("999", "taken@example.com", false);
    provider.set_emails("999", vec![("taken@example.com".into(), true, false)]);
    let (status, body) = sign_in(unverified).await;
    assert_failed(status, &body);
    let fresh = ProviderUser::new("1000", "fresh@example.com", false);
    provider.set_emails("1000", vec![]);
    let (status, body) = sign_in(fresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["is_verified"], false);

    // GitHub's way of failing: HTTP 200 with an `error` member.
    provider.misbehave(Misbehaviour::TokenErrorWith200);
    let (status, body) = sign_in(ProviderUser::new("1", "x@example.com", true)).await;
    assert_failed(status, &body);
}

async fn a_state_is_signed_single_use_short_lived_and_bound_to_its_client(backend: Backend) {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let mut env = oidc_env("HOOKAUTH_OAUTH", "acme", &provider);
    env.extend(
        oidc_env("HOOKAUTH_OAUTH", "other", &provider)
            .into_iter()
            .skip(1),
    );
    let app = app_with(backend, env).await;
    let carol = ProviderUser::new("carol-sub", "carol@example.com", true);

    // Garbage and a tampered signature.
    let body = start_sign_in(&app, &provider, &carol).await;
    for state in [
        "not-a-jwt".to_owned(),
        format!("{}x", body["state"].as_str().unwrap()),
    ] {
        let (status, answer) = app
            .post(
                "/oauth/acme/callback",
                json!({"code": body["code"], "state": state, "binding": body["binding"]}),
            )
            .await;
        assert_failed(status, &answer);
    }
    // Another client's binding: refused, and the rightful client's state is not used up.
    let (status, answer) = app
        .post(
            "/oauth/acme/callback",
            json!({"code": body["code"], "state": body["state"], "binding": "attacker-binding"}),
        )
        .await;
    assert_failed(status, &answer);
    // Started for `acme`, presented at `other`.
    let (status, answer) = app.post("/oauth/other/callback", body.clone()).await;
    assert_failed(status, &answer);
    assert_eq!(
        provider.token_requests(),
        0,
        "no refused attempt reached the provider"
    );

    let (status, answer) = app.post("/oauth/acme/callback", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Replayed: the state is used up.
    let (status, answer) = app.post("/oauth/acme/callback", body.clone()).await;
    assert_failed(status, &answer);

    // Expired: `state_minutes` (5) later.
    let body = start_sign_in(&app, &provider, &carol).await;
    app.shift_clock(6 * 60 * 1000);
    let (status, answer) = app.post("/oauth/acme/callback", body).await;
    assert_failed(status, &answer);
    app.shift_clock(0);

    // A link state cannot sign in.
    let access = app.login("dave@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, started) = authorize(
        &app.url("/oauth/acme/link/authorize"),
        app.http(),
        Some(&access),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let (code, state) = provider
        .authorize(started["authorization_url"].as_str().unwrap(), &carol)
        .await;
    let (status, answer) = app
        .post(
            "/oauth/acme/callback",
            json!({"code": code, "state": state, "binding": started["binding"]}),
        )
        .await;
    assert_failed(status, &answer);

    // Bodies: every field required, the binding 1-512 characters.
    for bad in [
        json!({"code": "c", "state": "s"}),
        json!({"code": "c", "state": "s", "binding": ""}),
        json!({"code": "c", "state": "s", "binding": "b".repeat(513)}),
        json!({"code": null, "state": "s", "binding": "b"}),
        json!({"code": 1, "state": "s", "binding": "b"}),
    ] {
        let (status, answer) = app.post("/oauth/acme/callback", bad.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad} -> {answer}"
        );
        assert_eq!(answer["code"], "validation_error");
    }
}

async fn redirect_uris_are_matched_exactly_and_unknown_providers_are_404(backend: Backend) {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let mut env = oidc_env("HOOKAUTH_OAUTH", "acme", &provider);
    env.push((
        "HOOKAUTH_OAUTH__PROVIDERS__ACME__REDIRECT_URIS".into(),
        "[\"com.example.app:/oauth\"]".into(),
    ));
    let app = app_with(backend, env).await;
    let try_uri = |uri: &str| {
        let url = format!(
            "{}?redirect_uri={}",
            app.url("/oauth/acme/authorize"),
            url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
        );
        let http = app.http().clone();
        async move { get_json(&url, &http, None).await }
    };
    for allowed in [REDIRECT, "com.example.app:/oauth"] {
        let (status, body) = try_uri(allowed).await;
        assert_eq!(status, StatusCode::OK, "{allowed}: {body}");
    }
    for refused in [
        "https://app.example.com/oauth/callback/",
        "https://APP.example.com/oauth/callback",
        "https://app.example.com/oauth/callback?x=1",
        "https://app.example.com/oauth/callback#x",
        "https://evil.example/oauth/callback",
        "http://app.example.com/oauth/callback",
        "",
    ] {
        let (status, body) = try_uri(refused).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}: {body}");
        assert_eq!(
            body,
            json!({"detail": "Invalid redirect URI", "code": "invalid_redirect_uri"})
        );
    }
    let (status, body) = get_json(&app.url("/oauth/acme/authorize"), app.http(), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["query", "redirect_uri"]));

    let (status, body) = authorize(&app.url("/oauth/nope/authorize"), app.http(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"detail": "OAuth provider 'nope' not configured",
               "code": "oauth_provider_not_found"})
    );
    let (status, body) = app
        .post(
            "/oauth/nope/callback",
            json!({"code": "c", "state": "s", "binding": "b"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

async fn provider_failures_answer_oauth_failed_without_leaking_the_answer(backend: Backend) {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let mut env = oidc_env("HOOKAUTH_OAUTH", "acme", &provider);
    env.push(("HOOKAUTH_OAUTH__TIMEOUT_MS".into(), "1000".into()));
    let app = app_with(backend, env).await;
    let erin = ProviderUser::new("erin-sub", "erin@example.com", true);
    for misbehaviour in [
        Misbehaviour::TokenError,
        Misbehaviour::TokenErrorWith200,
        Misbehaviour::NotJson,
        Misbehaviour::HugeBody,
        Misbehaviour::Slow(Duration::from_secs(3)),
    ] {
        provider.misbehave(misbehaviour.clone());
        let (status, body) = sign_in(&app, &provider, &erin).await;
        assert_failed(status, &body);
        assert!(
            !body.to_string().contains("SECRET-PROVIDER-DETAIL"),
            "{misbehaviour:?}"
        );
    }
    // The id_token lacks the email; the userinfo endpoint has it, and fails.
    provider.misbehave(Misbehaviour::None);
    let quiet = ProviderUser {
        email: None,
        ..erin.clone()
    };
    let (status, body) = sign_in(&app, &provider, &quiet).await;
    assert_failed(status, &body); // no email anywhere: no account can be made
    assert_eq!(user_count(&app).await, 0);

    provider.misbehave(Misbehaviour::None);
    let (status, body) = sign_in(&app, &provider, &erin).await;
    assert_eq!(status, StatusCode::OK, "the provider recovered: {body}");
}

async fn forged_id_tokens_are_refused(backend: Backend) {
    let (app, provider) = oidc_app(backend).await;
    let frank = ProviderUser::new("frank-sub", "frank@example.com", true);
    for forgery in [
        Misbehaviour::SignWithUnknownKey,
        Misbehaviour::SignWithUnpublishedKid,
        Misbehaviour::WrongAudience,
        Misbehaviour::WrongIssuer,
        Misbehaviour::AlgNone,
        Misbehaviour::Hs256WithPublicKey,
        Misbehaviour::Expired,
        Misbehaviour::WrongNonce,
        Misbehaviour::MissingIdToken,
    ] {
        provider.misbehave(forgery.clone());
        let (status, body) = sign_in(&app, &provider, &frank).await;
        assert_failed(status, &body);
        assert_eq!(user_count(&app).await, 0, "{forgery:?} created an account");
    }
    provider.misbehave(Misbehaviour::None);
    provider.sign_with_es256(true);
    let (status, body) = sign_in(&app, &provider, &frank).await;
    assert_eq!(status, StatusCode::OK, "ES256 is accepted: {body}");
    provider.sign_with_es256(false);
    let (status, body) = sign_in(&app, &provider, &frank).await;
    assert_eq!(status, StatusCode::OK, "RS256 is accepted: {body}");
}

async fn signed_in_users_link_and_unlink_providers_but_keep_a_way_in(backend: Backend) {
    let (app, provider) = oidc_app(backend).await;
    let gina = app.login("gina@example.com").await;
    let gina_token = gina["access_token"].as_str().unwrap().to_owned();
    let link_url = app.url("/oauth/acme/link/authorize");

    // Linking needs a session.
    let (status, body) = authorize(&link_url, app.http(), None).await;
    assert_unauthorized(status, &body);
    let (status, body) = app
        .post(
            "/oauth/acme/link/callback",
            json!({"code": "c", "state": "s", "binding": "b"}),
        )
        .await;
    assert_unauthorized(status, &body);

    // The provider's address need not match or be verified: the session is the proof.
    let (status, body) = link(
        &app,
        &provider,
        "acme",
        &gina_token,
        &ProviderUser::new("gina-acme", "gina.other@example.org", false),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"provider": "acme", "provider_user_id": "gina-acme",
               "provider_email": "gina.other@example.org"})
    );
    // Now she signs in with it.
    let (status, body) = sign_in(
        &app,
        &provider,
        &ProviderUser::new("gina-acme", "gina.other@example.org", false),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], gina["user"]["id"]);

    // A provider account that belongs to someone else: 409.
    let (status, henry) = sign_in(
        &app,
        &provider,
        &ProviderUser::new("henry-acme", "henry@example.com", true),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{henry}");
    let (status, body) = link(
        &app,
        &provider,
        "acme",
        &gina_token,
        &ProviderUser::new("henry-acme", "henry@example.com", true),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "oauth_account_taken");
    assert_eq!(
        body["detail"],
        "This acme account is already linked to another user."
    );
    // A second account of the same provider: 409.
    let (status, body) = link(
        &app,
        &provider,
        "acme",
        &gina_token,
        &ProviderUser::new("gina-second", "gina2@example.com", true),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "oauth_provider_already_linked");

    // A link started by gina cannot be finished in henry's session.
    let henry_token = henry["access_token"].as_str().unwrap().to_owned();
    let (_, started) = authorize(&link_url, app.http(), Some(&gina_token)).await;
    let (code, state) = provider
        .authorize(
            started["authorization_url"].as_str().unwrap(),
            &ProviderUser::new("x", "x@example.com", true),
        )
        .await;
    let (status, body) = app
        .request(
            Method::POST,
            "/oauth/acme/link/callback",
            Some(&henry_token),
            Some(json!({"code": code, "state": state, "binding": started["binding"]})),
        )
        .await;
    assert_failed(status, &body);

    // Unlink: henry signed up with the provider and has no password: refused.
    let (status, body) = app
        .request(
            Method::DELETE,
            "/oauth/accounts/acme",
            Some(&henry_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "last_sign_in_method");
    assert_eq!(
        body["detail"],
        "Cannot remove your only sign-in method. Set a password first."
    );
    // Gina has a password: unlinked, and her provider account no longer signs her in (a new
    // account with it is refused: her verified address is taken by her password account...
    // here the provider address is unverified and different, so a new account is made).
    let (status, _) = app
        .request(
            Method::DELETE,
            "/oauth/accounts/acme",
            Some(&gina_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/oauth/accounts", &gina_token).await.1, json!([]));
    let (status, body) = app
        .request(
            Method::DELETE,
            "/oauth/accounts/acme",
            Some(&gina_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["detail"], "OAuth account not found");
    let (status, body) = app
        .request(Method::DELETE, "/oauth/accounts/acme", None, None)
        .await;
    assert_unauthorized(status, &body);

    app.settle().await;
    assert_eq!(app.recorder.count_of(EventKind::AfterOauthLink), 1);
    assert_eq!(app.recorder.count_of(EventKind::AfterOauthUnlink), 1);
    match &app
        .recorder
        .last(EventKind::AfterOauthUnlink)
        .unwrap()
        .payload
    {
        EventPayload::AfterOauthUnlink { user, provider } => {
            assert_eq!(provider, "acme");
            assert_eq!(user.id, gina["user"]["id"].as_str().unwrap());
        }
        other => panic!("{other:?}"),
    }
}

async fn tenants_have_their_own_providers_and_accounts(backend: Backend) {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    // Only the tenant `acme` has the provider; the default tenant has none.
    let app = app_with(
        backend,
        oidc_env("HOOKAUTH_TENANTS__ACME__OAUTH", "acme", &provider),
    )
    .await;
    app.flows
        .store
        .create_tenant(&TenantId::parse("acme").unwrap(), 0)
        .await
        .unwrap();
    let (status, body) = app
        .request(Method::GET, "/oauth/providers", None, None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"providers": []})));
    let tenant = app.tenant("acme");
    let (status, body) = tenant
        .request(Method::GET, "/oauth/providers", None, None)
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"providers": ["acme"]}))
    );

    let (status, started) = authorize(&tenant.url("/oauth/acme/authorize"), app.http(), None).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let ivy = ProviderUser::new("ivy-sub", "ivy@example.com", true);
    let (code, state) = provider
        .authorize(started["authorization_url"].as_str().unwrap(), &ivy)
        .await;
    let body = json!({"code": code, "state": state, "binding": started["binding"]});
    // The default tenant has no such provider.
    let (status, _) = app.post("/oauth/acme/callback", body.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, signed_in) = tenant.post("/oauth/acme/callback", body).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    // The tenant's token works only in the tenant.
    let token = signed_in["access_token"].as_str().unwrap();
    let (status, _) = tenant.request(Method::GET, "/me", Some(token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get("/me", token).await;
    assert_unauthorized(status, &body);
    assert_eq!(user_count(&app).await, 0);
}

async fn two_callbacks_with_one_state_sign_in_once(backend: Backend) {
    let (app, provider) = oidc_app(backend).await;
    let body = start_sign_in(
        &app,
        &provider,
        &ProviderUser::new("jack-sub", "jack@example.com", true),
    )
    .await;
    let (a, b) = tokio::join!(
        app.post("/oauth/acme/callback", body.clone()),
        app.post("/oauth/acme/callback", body.clone())
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::BAD_REQUEST],
        "{a:?} {b:?}"
    );
    assert_eq!(user_count(&app).await, 1);
    assert_eq!(provider.token_requests(), 1);
}

/// `{T}/oauth-providers{path}` of tenant `acme` through the management API.
async fn manage(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("http://{}/t/acme/api/v1/oauth-providers{path}", app.addr);
    send(app.http(), method, url, token, body).await
}

async fn a_tenant_admin_manages_providers_through_the_api(backend: Backend) {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let mut env = vec![
        ("HOOKAUTH_OPERATOR_TOKEN".to_owned(), OPERATOR.to_owned()),
        (
            "HOOKAUTH_OAUTH__ALLOWED_INTERNAL_HOSTS".to_owned(),
            "[\"127.0.0.1\"]".to_owned(),
        ),
    ];
    // The default tenant has `acme` in the file: the API cannot change it.
    env.extend(oidc_env("HOOKAUTH_OAUTH", "acme", &provider));
    let app = app_with(backend, env).await;
    app.flows
        .store
        .create_tenant(&TenantId::parse("acme").unwrap(), 0)
        .await
        .unwrap();
    let idp = json!({
        "kind": "oidc",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "issuer": provider.issuer(),
        "redirect_uris": [REDIRECT],
    });

    // Who may: not anonymous, not a plain user of the tenant.
    let (status, body) = manage(&app, Method::PUT, "/idp", None, Some(idp.clone())).await;
    assert_unauthorized(status, &body);
    let tenant = app.tenant("acme");
    let creds = json!({"email": "plain@example.com", "password": PASSWORD});
    tenant.post("/register", creds.clone()).await;
    let (_, login) = tenant.post("/login", creds).await;
    let plain = login["access_token"].as_str().unwrap();
    let (status, _) = manage(&app, Method::PUT, "/idp", Some(plain), Some(idp.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = manage(&app, Method::PUT, "/idp", Some(OPERATOR), Some(idp.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, listed) = manage(&app, Method::GET, "", Some(OPERATOR), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["name"], "idp");
    assert_eq!(listed[0]["source"], "api");
    assert!(!listed.to_string().contains(CLIENT_SECRET), "{listed}");
    let stored: (Vec<u8>,) =
        sqlx::query_as("SELECT sealed_secret FROM tenant_oauth_providers WHERE name = 'idp'")
            .fetch_one(&mut db(&app).await)
            .await
            .unwrap();
    assert!(
        !String::from_utf8_lossy(&stored.0).contains(CLIENT_SECRET),
        "the client secret is sealed at rest"
    );

    // Users of the tenant sign in with it at once.
    let sign_in_at_acme = |who: ProviderUser| {
        let app = &app;
        let provider = &provider;
        async move {
            let tenant = app.tenant("acme");
            let (status, started) =
                authorize(&tenant.url("/oauth/idp/authorize"), app.http(), None).await;
            if status != StatusCode::OK {
                return (status, started);
            }
            let (code, state) = provider
                .authorize(started["authorization_url"].as_str().unwrap(), &who)
                .await;
            tenant
                .post(
                    "/oauth/idp/callback",
                    json!({"code": code, "state": state, "binding": started["binding"]}),
                )
                .await
        }
    };
    let kim = ProviderUser::new("kim-sub", "kim@example.com", true);
    let (status, body) = sign_in_at_acme(kim.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Changed without repeating the secret: the stored one is kept.
    let mut changed = idp.clone();
    changed.as_object_mut().unwrap().remove("client_secret");
    changed["scopes"] = json!(["openid", "email"]);
    let (status, body) = manage(&app, Method::PUT, "/idp", Some(OPERATOR), Some(changed)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = sign_in_at_acme(kim.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Refused settings, each with its code.
    for (name, bad, code) in [
        (
            "plain-http",
            json!({"kind": "oidc", "client_id": "c", "client_secret": "s",
            "issuer": "http://idp.example.com", "redirect_uris": [REDIRECT]}),
            "invalid_provider",
        ),
        (
            "nosecret",
            json!({"kind": "google", "client_id": "c", "redirect_uris": [REDIRECT]}),
            "invalid_provider",
        ),
        (
            "unknown-key",
            json!({"kind": "google", "client_id": "c", "client_secret": "s",
            "redirect_uris": [REDIRECT], "surprise": 1}),
            "invalid_provider",
        ),
        (
            "noredirect",
            json!({"kind": "google", "client_id": "c", "client_secret": "s"}),
            "invalid_provider",
        ),
        ("Bad_Name", idp.clone(), "invalid_provider"),
    ] {
        let (status, body) = manage(
            &app,
            Method::PUT,
            &format!("/{name}"),
            Some(OPERATOR),
            Some(bad),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert_eq!(body["code"], code, "{name}: {body}");
    }
    // The default tenant's file provider is not the API's to change.
    let (status, body) = send(
        app.http(),
        Method::PUT,
        format!("http://{}/api/v1/oauth-providers/acme", app.addr),
        Some(OPERATOR),
        Some(idp.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "provider_in_config");

    // Settings naming an internal host that is not allowed (stored straight into the
    // database, as if written before the rules or by hand): the server still does not connect.
    let port = reqwest::Url::parse(&provider.issuer())
        .unwrap()
        .port()
        .unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let directory = app.flows.oauth_directory();
    app.flows
        .store
        .put_tenant_oauth_provider(
            &acme,
            &hookauth::store::StoredOauthProvider {
                name: "sneaky".into(),
                config: json!({"kind": "oidc", "client_id": CLIENT_ID,
                    "issuer": format!("http://localhost:{port}"),
                    "redirect_uris": [REDIRECT]})
                .to_string(),
                sealed_secret: directory
                    .seal_secret(&acme, "sneaky", CLIENT_SECRET)
                    .unwrap(),
                updated_at: 1,
            },
        )
        .await
        .unwrap();
    directory.invalidate(&acme);
    let seen = provider.requests().len();
    let (status, body) = authorize(&tenant.url("/oauth/sneaky/authorize"), app.http(), None).await;
    assert_failed(status, &body);
    assert_eq!(
        provider.requests().len(),
        seen,
        "no request reached the loopback provider"
    );

    let (status, _) = manage(&app, Method::DELETE, "/idp", Some(OPERATOR), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = sign_in_at_acme(kim).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = manage(&app, Method::DELETE, "/idp", Some(OPERATOR), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn two_unlinks_at_once_leave_a_way_in(backend: Backend) {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let mut env = oidc_env("HOOKAUTH_OAUTH", "acme", &provider);
    env.extend(
        oidc_env("HOOKAUTH_OAUTH", "other", &provider)
            .into_iter()
            .skip(1),
    );
    let app = app_with(backend, env).await;
    // A passwordless user with two providers linked.
    let (status, body) = sign_in(
        &app,
        &provider,
        &ProviderUser::new("lea-acme", "lea@example.com", true),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let lea_other = ProviderUser::new("lea-other", "lea@example.com", true);
    let (status, body) = link(&app, &provider, "other", &token, &lea_other).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for _ in 0..3 {
        let (a, b) = tokio::join!(
            app.request(Method::DELETE, "/oauth/accounts/acme", Some(&token), None),
            app.request(Method::DELETE, "/oauth/accounts/other", Some(&token), None),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::NO_CONTENT, StatusCode::BAD_REQUEST],
            "exactly one may go: {a:?} {b:?}"
        );
        let (_, accounts) = app.get("/oauth/accounts", &token).await;
        assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
        // Link the removed one again for the next round.
        let gone = if a.0 == StatusCode::NO_CONTENT {
            "acme"
        } else {
            "other"
        };
        let who = ProviderUser::new(&format!("lea-{gone}"), "lea@example.com", true);
        let (status, body) = link(&app, &provider, gone, &token, &who).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

async fn unverified_addresses_sign_up_only_where_allowed(backend: Backend) {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let mut env = oidc_env("HOOKAUTH_OAUTH", "acme", &provider);
    env.push((
        "HOOKAUTH_OAUTH__UNVERIFIED_EMAIL_SIGNUP".into(),
        "false".into(),
    ));
    let app = app_with(backend, env).await;
    let (status, body) = sign_in(
        &app,
        &provider,
        &ProviderUser::new("mo-sub", "mo@example.com", false),
    )
    .await;
    assert_failed(status, &body);
    assert_eq!(user_count(&app).await, 0);
    let (status, body) = sign_in(
        &app,
        &provider,
        &ProviderUser::new("mo-sub", "mo@example.com", true),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["is_verified"], true);
    // Once the account exists, the provider signs it in whatever it says of the address now.
    let (status, body) = sign_in(
        &app,
        &provider,
        &ProviderUser::new("mo-sub", "mo@example.com", false),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
