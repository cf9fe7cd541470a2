//! A fake but real-HTTP OAuth 2.0 / OpenID Connect provider for the integration tests: it runs
//! in the test's own tokio runtime on a free 127.0.0.1 port, so the server under test talks to
//! it over real HTTP exactly as it would to Google or GitHub.
//!
//! Two flavours:
//! - [`OidcProvider`]: discovery, JWKS, `/authorize`, `/token`, `/userinfo`. Its signing keys
//!   (RSA 2048 "rsa-1" for RS256, P-256 "ec-1" for ES256) are generated when it starts, so no
//!   test can pass against a key baked into the server under test.
//! - [`GithubLikeProvider`]: plain OAuth 2.0 the way GitHub does it (`/login/oauth/authorize`,
//!   `/login/oauth/access_token`, `/user`, `/user/emails`), with GitHub's quirks: errors as
//!   HTTP 200, form-encoded token responses unless JSON is asked for, comma-separated scopes,
//!   numeric user ids, a mandatory `User-Agent`.
//!
//! Both are strict where real providers are strict (PKCE, single-use codes, exact redirect_uri,
//! client authentication, duplicate parameters), and their refusals carry an
//! `error_description` naming what was wrong, so a failing test says what the server under
//! test got wrong. [`Misbehaviour`] makes them lie in the ways a hostile or broken provider
//! does; every lie that could leak carries [`SECRET_DETAIL`], so a test can assert the server
//! under test never shows the provider's words to the end user.
//!
//! Self-contained on purpose (no hookauth item): it is included by `#[path]` from test binaries.

#![allow(
    dead_code,
    reason = "included by #[path] into several test binaries, each using part of it"
)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng as _;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

/// The words every misbehaving answer carries; the server under test must never show them.
pub const SECRET_DETAIL: &str = "SECRET-PROVIDER-DETAIL";

/// Size of the [`Misbehaviour::HugeBody`] token response.
pub const HUGE_BODY_BYTES: usize = 20 * 1024 * 1024;

/// The `iss` of [`Misbehaviour::WrongIssuer`] id_tokens.
pub const EVIL_ISSUER: &str = "https://evil.example";

/// A request body larger than this is refused (413) before any handler sees it.
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// A user signing in at the provider.
#[derive(Clone, Debug)]
pub struct ProviderUser {
    /// OIDC `sub`; for the GitHub-like provider the numeric user id, as a string (served as a
    /// JSON number by `/user`).
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
}

impl ProviderUser {
    pub fn new(sub: &str, email: &str, verified: bool) -> Self {
        Self {
            sub: sub.into(),
            email: Some(email.into()),
            email_verified: verified,
            name: None,
            picture: None,
        }
    }

    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn with_picture(mut self, url: &str) -> Self {
        self.picture = Some(url.into());
        self
    }

    /// A user the provider knows no email for (or, GitHub-like, whose email is private).
    pub fn without_email(mut self) -> Self {
        self.email = None;
        self.email_verified = false;
        self
    }
}

/// What the next token exchange (or userinfo) does wrong. Set with `misbehave`; stays until
/// reset with [`Misbehaviour::None`].
///
/// The token-endpoint misbehaviours (`TokenError`, `TokenErrorWith200`, `HugeBody`, `NotJson`)
/// answer before the request is checked, so they do not use up the code; `Slow` waits, then
/// answers normally. The id_token ones need a valid exchange and change only the id_token.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Misbehaviour {
    #[default]
    None,
    /// The id_token is signed by a freshly generated key of the selected algorithm under the
    /// published kid ("rsa-1", or "ec-1" with [`OidcProvider::sign_with_es256`]): the kid
    /// matches, the signature does not.
    SignWithUnknownKey,
    /// Signed by a freshly generated key with kid "rogue", which is not in the JWKS.
    SignWithUnpublishedKid,
    /// `aud` = "someone-else".
    WrongAudience,
    /// `iss` = [`EVIL_ISSUER`].
    WrongIssuer,
    /// Header `{"alg":"none"}` and an empty signature: `header.claims.`
    AlgNone,
    /// Algorithm confusion: HS256, kid "rsa-1", HMAC keyed with the big-endian bytes of the
    /// published RSA key's modulus `n` (what a verifier that trusts the header's `alg` and
    /// feeds "the key" to HMAC would use).
    Hs256WithPublicKey,
    /// `exp` 10 minutes in the past (`iat` 15 minutes).
    Expired,
    /// `nonce` = "not-the-nonce".
    WrongNonce,
    /// A successful token response without `id_token`.
    MissingIdToken,
    /// The token endpoint answers 400 `{"error":"invalid_grant","error_description":SECRET}`.
    TokenError,
    /// GitHub style: 200 `{"error":"bad_verification_code","error_description":SECRET}`.
    TokenErrorWith200,
    /// `/userinfo` (GitHub-like: `/user`) answers 500 with body [`SECRET_DETAIL`].
    UserinfoError,
    /// GitHub-like only: `/user/emails` answers 500 with body [`SECRET_DETAIL`].
    EmailsError,
    /// The token endpoint sleeps this long, then answers normally.
    Slow(Duration),
    /// The token endpoint answers 200 `application/json` with a [`HUGE_BODY_BYTES`] body,
    /// chunked, without Content-Length: a client has to count what it reads to stop it.
    HugeBody,
    /// The token endpoint answers 200 `text/html` `<html>SECRET-PROVIDER-DETAIL</html>`.
    NotJson,
}

impl Misbehaviour {
    /// The misbehaviours that only change the id_token (so mean nothing to the GitHub-like one).
    fn is_about_id_token(&self) -> bool {
        matches!(
            self,
            Self::SignWithUnknownKey
                | Self::SignWithUnpublishedKid
                | Self::WrongAudience
                | Self::WrongIssuer
                | Self::AlgNone
                | Self::Hs256WithPublicKey
                | Self::Expired
                | Self::WrongNonce
                | Self::MissingIdToken
        )
    }
}

/// A request either provider received (recorded before routing, so 404s and 405s are there too).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?` ("" when none).
    pub query: String,
    /// The body as text (lossy UTF-8).
    pub body: String,
    pub authorization: Option<String>,
    /// Every header, names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter of the query string, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_pairs(&self.query)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// A parameter of a form-encoded body, decoded.
    pub fn form_param(&self, name: &str) -> Option<String> {
        form_pairs(&self.body)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

// ---------------------------------------------------------------------------------------------
// OpenID Connect provider
// ---------------------------------------------------------------------------------------------

/// An OpenID Connect provider on `http://127.0.0.1:PORT`; stops when dropped.
pub struct OidcProvider {
    shared: Arc<Oidc>,
    task: tokio::task::JoinHandle<()>,
}

struct Oidc {
    core: Core,
    rsa: RsaKey,
    ec: EcKey,
    discovery: Value,
    jwks: Value,
}

impl OidcProvider {
    /// Generates the keys (an RSA 2048 key takes a moment) and starts serving.
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let rsa = tokio::task::spawn_blocking(RsaKey::generate)
            .await
            .expect("RSA key generation");
        let ec = EcKey::generate();
        let (listener, base) = bind().await;
        let discovery = json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "jwks_uri": format!("{base}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
            "grant_types_supported": ["authorization_code"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name", "picture"],
        });
        let jwks = json!({ "keys": [rsa.jwk("rsa-1"), ec.jwk("ec-1")] });
        let shared = Arc::new(Oidc {
            core: Core::new(base, client_id, client_secret),
            rsa,
            ec,
            discovery,
            jwks,
        });
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|State(p): State<Arc<Oidc>>| async move { Json(p.discovery.clone()) }),
            )
            .route(
                "/jwks",
                get(|State(p): State<Arc<Oidc>>| async move { Json(p.jwks.clone()) }),
            )
            .route("/authorize", get(oidc_authorize))
            .route("/token", post(oidc_token))
            .route("/userinfo", get(oidc_userinfo))
            .with_state(Arc::clone(&shared));
        let task = serve(listener, app, Arc::clone(&shared.core.requests));
        Self { shared, task }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash: discovery's `issuer` is exactly this.
    pub fn issuer(&self) -> String {
        self.shared.core.base.clone()
    }

    /// The issuer followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.shared.core.base)
    }

    /// Makes the next token exchanges (or userinfo calls) misbehave, until `Misbehaviour::None`.
    pub fn misbehave(&self, m: Misbehaviour) {
        assert!(
            m != Misbehaviour::EmailsError,
            "OidcProvider has no /user/emails: EmailsError is for GithubLikeProvider"
        );
        self.shared.core.lock().misbehaviour = m;
    }

    /// Signs the next id_tokens with ES256 (kid "ec-1") instead of RS256 (kid "rsa-1").
    pub fn sign_with_es256(&self, yes: bool) {
        self.shared.core.lock().es256 = yes;
    }

    /// Plays `user` signing in: GETs `authorization_url` (as the server under test built it)
    /// without following redirects and returns `(code, state)` from the 302's Location.
    /// Panics, with the provider's answer, on anything but a 302 carrying a code.
    pub async fn authorize(
        &self,
        authorization_url: &str,
        user: &ProviderUser,
    ) -> (String, String) {
        sign_in(
            &self.shared.core,
            "/authorize",
            authorization_url,
            user,
            "OidcProvider",
        )
        .await
    }

    /// The user `/authorize` signs in when no [`authorize`](Self::authorize) call is under way,
    /// for a test whose own HTTP client follows the redirects. `None` (the default) makes such
    /// requests fail with 400.
    pub fn set_signed_in_user(&self, user: Option<ProviderUser>) {
        self.shared.core.lock().signed_in = user;
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.core.requests()
    }

    /// How many `POST /token` requests arrived (whatever became of them).
    pub fn token_requests(&self) -> usize {
        self.shared.core.count("POST", "/token")
    }

    /// The JWKS document `/jwks` serves.
    pub fn jwks(&self) -> Value {
        self.shared.jwks.clone()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn oidc_authorize(State(p): State<Arc<Oidc>>, RawQuery(query): RawQuery) -> Response {
    oidc_authorize_checked(&p, query.as_deref().unwrap_or(""))
        .unwrap_or_else(IntoResponse::into_response)
}

fn oidc_authorize_checked(p: &Oidc, query: &str) -> Result<Response, Refusal> {
    let q = Params::parse(query)?;
    if q.get("response_type") != Some("code") {
        return Err(Refusal::invalid_request(format!(
            "response_type must be \"code\", got {:?}",
            q.get("response_type")
        )));
    }
    p.core.check_client_id(&q)?;
    let redirect_uri = q.require("redirect_uri")?;
    let scope = q.require("scope")?;
    if !scope.split(' ').any(|s| s == "openid") {
        return Err(Refusal::invalid_request(format!(
            "scope must contain \"openid\", got {scope:?}"
        )));
    }
    let state = q.require("state")?;
    let challenge = check_challenge(&q, true)?;
    let nonce = q.require("nonce")?;
    let user = p.core.user_signing_in(state)?;
    Ok(p.core.issue_code(
        redirect_uri,
        state,
        Grant {
            redirect_uri: redirect_uri.into(),
            code_challenge: challenge,
            nonce: Some(nonce.into()),
            user,
            scope: scope.into(),
        },
    ))
}

async fn oidc_token(State(p): State<Arc<Oidc>>, headers: HeaderMap, body: String) -> Response {
    let m = p.core.misbehaviour();
    if let Some(answer) = token_misbehaviour(&m).await {
        return answer;
    }
    let grant = match p.core.exchange(&headers, &body, Flavour::Oidc) {
        Ok(grant) => grant,
        Err(refusal) => return refusal.into_response(),
    };
    let es256 = p.core.lock().es256;
    let id_token = p.id_token(&grant, &m, es256).await;
    let access_token = p.core.issue_access_token(&grant);
    let mut answer = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": grant.scope,
    });
    if let Some(id_token) = id_token {
        answer["id_token"] = id_token.into();
    }
    no_store(StatusCode::OK, Json(answer))
}

async fn oidc_userinfo(State(p): State<Arc<Oidc>>, headers: HeaderMap) -> Response {
    if p.core.misbehaviour() == Misbehaviour::UserinfoError {
        return (StatusCode::INTERNAL_SERVER_ERROR, SECRET_DETAIL).into_response();
    }
    match p.core.bearer(&headers, &["Bearer"]) {
        Some(grant) => Json(Value::Object(user_claims(&grant.user))).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
            Json(json!({"error": "invalid_token"})),
        )
            .into_response(),
    }
}

/// `sub`, and `email`, `email_verified`, `name`, `picture` where the user has them
/// (OIDC wants absent claims omitted, not null; `email_verified` goes with `email`).
fn user_claims(user: &ProviderUser) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), user.sub.clone().into());
    if let Some(email) = &user.email {
        claims.insert("email".into(), email.clone().into());
        claims.insert("email_verified".into(), user.email_verified.into());
    }
    if let Some(name) = &user.name {
        claims.insert("name".into(), name.clone().into());
    }
    if let Some(picture) = &user.picture {
        claims.insert("picture".into(), picture.clone().into());
    }
    claims
}

impl Oidc {
    /// The id_token for `grant`, misbehaving as `m` says; `None` for `MissingIdToken`.
    async fn id_token(&self, grant: &Grant, m: &Misbehaviour, es256: bool) -> Option<String> {
        let now = unix_now();
        let mut claims = user_claims(&grant.user);
        claims.insert("iss".into(), self.core.base.clone().into());
        claims.insert("aud".into(), self.core.client_id.clone().into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + 300).into());
        if let Some(nonce) = &grant.nonce {
            claims.insert("nonce".into(), nonce.clone().into());
        }
        match m {
            Misbehaviour::MissingIdToken => return None,
            Misbehaviour::WrongAudience => {
                claims.insert("aud".into(), "someone-else".into());
            }
            Misbehaviour::WrongIssuer => {
                claims.insert("iss".into(), EVIL_ISSUER.into());
            }
            Misbehaviour::Expired => {
                claims.insert("iat".into(), (now - 900).into());
                claims.insert("exp".into(), (now - 600).into());
            }
            Misbehaviour::WrongNonce => {
                claims.insert("nonce".into(), "not-the-nonce".into());
            }
            _ => {}
        }
        let claims = Value::Object(claims);
        let (alg, published_kid) = if es256 {
            (Algorithm::ES256, "ec-1")
        } else {
            (Algorithm::RS256, "rsa-1")
        };
        let fresh_key = || async move {
            if es256 {
                EcKey::generate().encoding
            } else {
                tokio::task::spawn_blocking(RsaKey::generate)
                    .await
                    .expect("RSA key generation")
                    .encoding
            }
        };
        Some(match m {
            Misbehaviour::AlgNone => format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            ),
            Misbehaviour::Hs256WithPublicKey => sign(
                &claims,
                Algorithm::HS256,
                "rsa-1",
                &EncodingKey::from_secret(&self.rsa.n),
            ),
            Misbehaviour::SignWithUnknownKey => {
                sign(&claims, alg, published_kid, &fresh_key().await)
            }
            Misbehaviour::SignWithUnpublishedKid => sign(&claims, alg, "rogue", &fresh_key().await),
            _ if es256 => sign(&claims, alg, published_kid, &self.ec.encoding),
            _ => sign(&claims, alg, published_kid, &self.rsa.encoding),
        })
    }
}

fn sign(claims: &Value, alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).expect("signing an id_token")
}

/// An RSA 2048 signing key: the PKCS#1 DER jsonwebtoken signs with, and the public numbers.
struct RsaKey {
    encoding: EncodingKey,
    /// Modulus, big-endian, no leading zero byte (as JWK `n` wants it).
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaKey {
    fn generate() -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA keygen");
        let der = key.to_pkcs1_der().expect("RSA key as PKCS#1 DER");
        Self {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
        }
    }

    fn jwk(&self, kid: &str) -> Value {
        json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
        })
    }
}

/// A P-256 signing key: the PKCS#8 DER jsonwebtoken signs with, and the public point.
struct EcKey {
    encoding: EncodingKey,
    x: Vec<u8>,
    y: Vec<u8>,
}

impl EcKey {
    fn generate() -> Self {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("EC keygen");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("EC key from PKCS#8");
        // Uncompressed SEC1 point: 0x04, then x and y, 32 bytes each (JWK wants them unpadded
        // base64url of exactly 32 bytes, leading zeros kept).
        let point = pair.public_key().as_ref();
        assert_eq!((point.len(), point[0]), (65, 4), "uncompressed P-256 point");
        Self {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            x: point[1..33].to_vec(),
            y: point[33..].to_vec(),
        }
    }

    fn jwk(&self, kid: &str) -> Value {
        json!({
            "kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&self.x),
            "y": URL_SAFE_NO_PAD.encode(&self.y),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub-like provider
// ---------------------------------------------------------------------------------------------

/// A non-OIDC provider that behaves like GitHub; stops when dropped.
pub struct GithubLikeProvider {
    core: Arc<Core>,
    task: tokio::task::JoinHandle<()>,
}

impl GithubLikeProvider {
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let (listener, base) = bind().await;
        let core = Arc::new(Core::new(base, client_id, client_secret));
        let app = Router::new()
            .route("/login/oauth/authorize", get(github_authorize))
            .route("/login/oauth/access_token", post(github_token))
            .route("/user", get(github_user))
            .route("/user/emails", get(github_emails))
            .with_state(Arc::clone(&core));
        let task = serve(listener, app, Arc::clone(&core.requests));
        Self { core, task }
    }

    /// `http://127.0.0.1:PORT` followed by `path`; `url("")` is the base, which serves both
    /// the web endpoints (github.com) and the API (api.github.com).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.core.base)
    }

    /// Token and user misbehaviours only: the id_token ones panic (there is no id_token).
    pub fn misbehave(&self, m: Misbehaviour) {
        assert!(
            !m.is_about_id_token(),
            "GithubLikeProvider issues no id_token: {m:?} does not apply"
        );
        self.core.lock().misbehaviour = m;
    }

    /// Plays `user` (whose `sub` must be numeric) signing in: GETs `authorization_url` without
    /// following redirects and returns `(code, state)` from the 302's Location.
    pub async fn authorize(
        &self,
        authorization_url: &str,
        user: &ProviderUser,
    ) -> (String, String) {
        assert!(
            user.sub.parse::<u64>().is_ok(),
            "GitHub user ids are numbers; {:?} is not",
            user.sub
        );
        sign_in(
            &self.core,
            "/login/oauth/authorize",
            authorization_url,
            user,
            "GithubLikeProvider",
        )
        .await
    }

    /// See [`OidcProvider::set_signed_in_user`].
    pub fn set_signed_in_user(&self, user: Option<ProviderUser>) {
        self.core.lock().signed_in = user;
    }

    /// What `/user/emails` lists for the user with that `sub`: `(email, primary, verified)`.
    /// Unset, it lists the user's email as primary with its `email_verified` (or nothing).
    pub fn set_emails(&self, user_sub: &str, emails: Vec<(String, bool, bool)>) {
        self.core.lock().emails.insert(user_sub.into(), emails);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.core.requests()
    }

    /// How many `POST /login/oauth/access_token` requests arrived.
    pub fn token_requests(&self) -> usize {
        self.core.count("POST", "/login/oauth/access_token")
    }
}

impl Drop for GithubLikeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn github_authorize(State(core): State<Arc<Core>>, RawQuery(query): RawQuery) -> Response {
    github_authorize_checked(&core, query.as_deref().unwrap_or(""))
        .unwrap_or_else(IntoResponse::into_response)
}

fn github_authorize_checked(core: &Core, query: &str) -> Result<Response, Refusal> {
    let q = Params::parse(query)?;
    core.check_client_id(&q)?;
    let redirect_uri = q.require("redirect_uri")?;
    let state = q.require("state")?;
    let challenge = check_challenge(&q, false)?;
    let user = core.user_signing_in(state)?;
    Ok(core.issue_code(
        redirect_uri,
        state,
        Grant {
            redirect_uri: redirect_uri.into(),
            code_challenge: challenge,
            nonce: None,
            user,
            scope: q.get("scope").unwrap_or("").into(),
        },
    ))
}

/// GitHub's token endpoint: every refusal is HTTP 200 with an `error`, and the answer is
/// form-encoded unless the request says `Accept: application/json`.
async fn github_token(State(core): State<Arc<Core>>, headers: HeaderMap, body: String) -> Response {
    if let Some(answer) = token_misbehaviour(&core.misbehaviour()).await {
        return answer;
    }
    let wants_json = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("application/json")));
    let fields = match core.exchange(&headers, &body, Flavour::Github) {
        Ok(grant) => {
            let access_token = core.issue_access_token(&grant);
            // GitHub lists the granted scopes comma-separated, not space-separated.
            let scope = grant
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(",");
            vec![
                ("access_token", access_token),
                ("scope", scope),
                ("token_type", "bearer".into()),
            ]
        }
        Err(refusal) => {
            let error = match refusal.error {
                "invalid_client" => "incorrect_client_credentials",
                "invalid_grant" => "bad_verification_code",
                other => other,
            };
            vec![
                ("error", error.into()),
                ("error_description", refusal.description),
                ("error_uri", "https://docs.github.com/apps/troubleshooting-oauth-app-access-token-request-errors".into()),
            ]
        }
    };
    if wants_json {
        let map: Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        no_store(StatusCode::OK, Json(map))
    } else {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        no_store(
            StatusCode::OK,
            (
                [(
                    header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded; charset=utf-8",
                )],
                body,
            ),
        )
    }
}

async fn github_user(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    let grant = match github_api_caller(&core, &headers, Misbehaviour::UserinfoError) {
        Ok(grant) => grant,
        Err(answer) => return *answer,
    };
    let user = &grant.user;
    Json(json!({
        "id": user.sub.parse::<u64>().expect("numeric GitHub user id"),
        "login": format!("user{}", user.sub),
        "name": user.name,
        "email": user.email,
        "avatar_url": user.picture,
    }))
    .into_response()
}

async fn github_emails(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    let grant = match github_api_caller(&core, &headers, Misbehaviour::EmailsError) {
        Ok(grant) => grant,
        Err(answer) => return *answer,
    };
    let user = &grant.user;
    let set = core.lock().emails.get(&user.sub).cloned();
    let emails = set.unwrap_or_else(|| match &user.email {
        Some(email) => vec![(email.clone(), true, user.email_verified)],
        None => Vec::new(),
    });
    let list: Vec<Value> = emails
        .into_iter()
        .map(|(email, primary, verified)| {
            json!({
                "email": email,
                "primary": primary,
                "verified": verified,
                "visibility": if primary { Some("public") } else { None },
            })
        })
        .collect();
    Json(list).into_response()
}

/// The checks GitHub's API makes before answering: a User-Agent (403 without, as GitHub does),
/// the misbehaviour `failing` for this endpoint, then an access token (`Bearer` or GitHub's
/// older `token` scheme).
fn github_api_caller(
    core: &Core,
    headers: &HeaderMap,
    failing: Misbehaviour,
) -> Result<Grant, Box<Response>> {
    if !headers.contains_key(header::USER_AGENT) {
        return Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
            )
                .into_response(),
        ));
    }
    if core.misbehaviour() == failing {
        return Err(Box::new(
            (StatusCode::INTERNAL_SERVER_ERROR, SECRET_DETAIL).into_response(),
        ));
    }
    core.bearer(headers, &["Bearer", "token"]).ok_or_else(|| {
        Box::new(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({
                    "message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/rest",
                })),
            )
                .into_response(),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// What both flavours share
// ---------------------------------------------------------------------------------------------

type RequestLog = Arc<Mutex<Vec<Recorded>>>;

/// The configured client and everything that changes while a provider runs.
struct Core {
    /// `http://127.0.0.1:PORT`.
    base: String,
    client_id: String,
    client_secret: String,
    requests: RequestLog,
    state: Mutex<Mutable>,
}

#[derive(Default)]
struct Mutable {
    misbehaviour: Misbehaviour,
    es256: bool,
    /// Users of `authorize` calls under way, by the `state` of their authorization URL.
    signing_in: HashMap<String, ProviderUser>,
    signed_in: Option<ProviderUser>,
    codes: HashMap<String, Grant>,
    used_codes: HashSet<String>,
    access_tokens: HashMap<String, Grant>,
    emails: HashMap<String, Vec<(String, bool, bool)>>,
}

/// What an authorization code (and then its access token) stands for.
#[derive(Clone, Debug)]
struct Grant {
    redirect_uri: String,
    code_challenge: Option<String>,
    nonce: Option<String>,
    user: ProviderUser,
    scope: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Flavour {
    Oidc,
    Github,
}

impl Core {
    fn new(base: String, client_id: &str, client_secret: &str) -> Self {
        Self {
            base,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            requests: RequestLog::default(),
            state: Mutex::default(),
        }
    }

    /// The state, even after a panicking test thread poisoned the lock.
    fn lock(&self) -> MutexGuard<'_, Mutable> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn misbehaviour(&self) -> Misbehaviour {
        self.lock().misbehaviour.clone()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn count(&self, method: &str, path: &str) -> usize {
        let log = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    fn check_client_id(&self, q: &Params) -> Result<(), Refusal> {
        let client_id = q.require("client_id")?;
        if client_id != self.client_id {
            return Err(Refusal::invalid_request(format!(
                "unknown client_id {client_id:?}"
            )));
        }
        Ok(())
    }

    fn user_signing_in(&self, state: &str) -> Result<ProviderUser, Refusal> {
        let mut s = self.lock();
        s.signing_in
            .remove(state)
            .or_else(|| s.signed_in.clone())
            .ok_or_else(|| {
                Refusal::invalid_request(
                    "no user is signing in: use the provider's authorize() (or set_signed_in_user)",
                )
            })
    }

    /// Binds a fresh code to `grant` and redirects to `redirect_uri?code=..&state=..`.
    fn issue_code(&self, redirect_uri: &str, state: &str, grant: Grant) -> Response {
        let code = random_string();
        self.lock().codes.insert(code.clone(), grant);
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        let location = format!(
            "{redirect_uri}{separator}code={}&state={}",
            form_encode(&code),
            form_encode(state)
        );
        match HeaderValue::try_from(location) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(_) => {
                Refusal::invalid_request("redirect_uri is not a valid header value").into_response()
            }
        }
    }

    fn issue_access_token(&self, grant: &Grant) -> String {
        let token = random_string();
        self.lock()
            .access_tokens
            .insert(token.clone(), grant.clone());
        token
    }

    /// The grant of the access token in `Authorization: <scheme> <token>`, `scheme` one of
    /// `schemes` (compared case-insensitively, as RFC 7235 says).
    fn bearer(&self, headers: &HeaderMap, schemes: &[&str]) -> Option<Grant> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
            return None;
        }
        self.lock().access_tokens.get(token.trim()).cloned()
    }

    /// The checks of an authorization-code exchange, in the order a provider makes them:
    /// body format, client authentication, grant type, code (single use), redirect_uri, PKCE.
    /// A known code is used up by any exchange that gets as far as presenting it.
    fn exchange(
        &self,
        headers: &HeaderMap,
        body: &str,
        flavour: Flavour,
    ) -> Result<Grant, Refusal> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(Refusal::invalid_request(format!(
                "the body must be application/x-www-form-urlencoded, got Content-Type {content_type:?}"
            )));
        }
        let form = Params::parse(body)?;
        self.authenticate_client(headers, &form)?;
        if flavour == Flavour::Oidc && form.get("grant_type") != Some("authorization_code") {
            return Err(Refusal::new(
                "unsupported_grant_type",
                format!(
                    "grant_type must be \"authorization_code\", got {:?}",
                    form.get("grant_type")
                ),
            ));
        }
        let code = form.require("code")?;
        let grant = {
            let mut s = self.lock();
            match s.codes.remove(code) {
                Some(grant) => {
                    s.used_codes.insert(code.into());
                    grant
                }
                None if s.used_codes.contains(code) => {
                    return Err(Refusal::invalid_grant("the code was already used"));
                }
                None => return Err(Refusal::invalid_grant("unknown code")),
            }
        };
        match (form.get("redirect_uri"), flavour) {
            (Some(uri), _) if uri == grant.redirect_uri => {}
            (None, Flavour::Github) => {}
            (None, Flavour::Oidc) => {
                return Err(Refusal::invalid_grant(
                    "redirect_uri is missing (it was given at authorize)",
                ));
            }
            (Some(uri), _) => {
                let error = if flavour == Flavour::Github {
                    "redirect_uri_mismatch"
                } else {
                    "invalid_grant"
                };
                return Err(Refusal::new(
                    error,
                    format!(
                        "redirect_uri {uri:?} is not the one given at authorize ({:?})",
                        grant.redirect_uri
                    ),
                ));
            }
        }
        if let Some(challenge) = &grant.code_challenge {
            let verifier = form.get("code_verifier").ok_or_else(|| {
                Refusal::invalid_grant(
                    "code_verifier is missing (a code_challenge was given at authorize)",
                )
            })?;
            let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
            if !(43..=128).contains(&verifier.len()) || !verifier.chars().all(unreserved) {
                return Err(Refusal::invalid_grant(
                    "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636)",
                ));
            }
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
                return Err(Refusal::invalid_grant(
                    "BASE64URL(SHA256(code_verifier)) does not match the code_challenge",
                ));
            }
        }
        Ok(grant)
    }

    /// client_secret_basic or client_secret_post, never both (RFC 6749 §2.3).
    ///
    /// HTTP Basic is done the RFC 6749 §2.3.1 way: client_id and client_secret are each
    /// form-urlencoded, joined with ':' and base64-encoded (standard alphabet, padded); so a
    /// secret with characters like `+`, `%`, `:` or space only matches when the client encoded
    /// it first.
    fn authenticate_client(&self, headers: &HeaderMap, form: &Params) -> Result<(), Refusal> {
        let basic = match headers.get(header::AUTHORIZATION) {
            None => None,
            Some(value) => {
                let value = value.to_str().unwrap_or("");
                let encoded = match value.split_once(' ') {
                    Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => rest.trim(),
                    _ => {
                        return Err(Refusal::invalid_client(
                            "the Authorization header is not HTTP Basic",
                        ));
                    }
                };
                let decoded = STANDARD
                    .decode(encoded)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| {
                        Refusal::invalid_client("HTTP Basic credentials are not base64 of UTF-8")
                    })?;
                let (id, secret) = decoded
                    .split_once(':')
                    .ok_or_else(|| Refusal::invalid_client("HTTP Basic credentials have no ':'"))?;
                Some((form_decode(id), form_decode(secret)))
            }
        };
        let (id, secret) = match (basic, form.get("client_secret")) {
            (Some(_), Some(_)) => {
                return Err(Refusal::invalid_request(
                    "the client authenticated twice: HTTP Basic and client_secret in the body",
                ));
            }
            (Some((id, secret)), None) => {
                if let Some(body_id) = form.get("client_id")
                    && body_id != id
                {
                    return Err(Refusal::invalid_client(
                        "client_id in the body differs from HTTP Basic's",
                    ));
                }
                (id, secret)
            }
            (None, Some(secret)) => {
                let id = form.get("client_id").ok_or_else(|| {
                    Refusal::invalid_client("client_secret in the body without client_id")
                })?;
                (id.to_owned(), secret.to_owned())
            }
            (None, None) => return Err(Refusal::invalid_client("no client authentication")),
        };
        if id != self.client_id || secret != self.client_secret {
            return Err(Refusal::invalid_client("wrong client_id or client_secret"));
        }
        Ok(())
    }
}

/// The PKCE parameters at authorize: S256 only, and a challenge of the only length S256 gives
/// (43 base64url characters, no padding). Required for OIDC, optional for GitHub.
fn check_challenge(q: &Params, required: bool) -> Result<Option<String>, Refusal> {
    let Some(challenge) = q.get("code_challenge") else {
        return if required {
            Err(Refusal::invalid_request("code_challenge is missing"))
        } else {
            Ok(None)
        };
    };
    if q.get("code_challenge_method") != Some("S256") {
        return Err(Refusal::invalid_request(format!(
            "code_challenge_method must be \"S256\", got {:?}",
            q.get("code_challenge_method")
        )));
    }
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if challenge.len() != 43 || !challenge.chars().all(base64url) {
        return Err(Refusal::invalid_request(
            "code_challenge must be BASE64URL-NOPAD(SHA256(code_verifier)): 43 characters of [A-Za-z0-9_-]",
        ));
    }
    Ok(Some(challenge.into()))
}

/// The token-endpoint misbehaviours: an answer to send instead of the real one, or (`Slow`)
/// a delay before it.
async fn token_misbehaviour(m: &Misbehaviour) -> Option<Response> {
    match m {
        Misbehaviour::Slow(delay) => {
            tokio::time::sleep(*delay).await;
            None
        }
        Misbehaviour::TokenError => Some(no_store(
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": SECRET_DETAIL})),
        )),
        Misbehaviour::TokenErrorWith200 => Some(no_store(
            StatusCode::OK,
            Json(json!({"error": "bad_verification_code", "error_description": SECRET_DETAIL})),
        )),
        Misbehaviour::NotJson => Some(
            (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                format!("<html>{SECRET_DETAIL}</html>"),
            )
                .into_response(),
        ),
        Misbehaviour::HugeBody => Some(huge_response()),
        _ => None,
    }
}

/// 200 `application/json`, [`HUGE_BODY_BYTES`] of valid JSON (a token response with a huge
/// padding field), sent chunked: from a stream, so hyper cannot send a Content-Length. The
/// bytes are built once per test binary and shared, so each answer costs no new 20 MiB.
fn huge_response() -> Response {
    static HUGE: OnceLock<Bytes> = OnceLock::new();
    let body = HUGE.get_or_init(|| {
        let head = br#"{"access_token":"huge","token_type":"Bearer","padding":""#;
        let tail = br#""}"#;
        let mut body = Vec::with_capacity(HUGE_BODY_BYTES);
        body.extend_from_slice(head);
        body.resize(HUGE_BODY_BYTES - tail.len(), b'x');
        body.extend_from_slice(tail);
        Bytes::from(body)
    });
    let stream = Body::from(body.clone()).into_data_stream();
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A token-endpoint answer: `Cache-Control: no-store`, as RFC 6749 §5.1 requires.
fn no_store(status: StatusCode, body: impl IntoResponse) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// An OAuth error answer: `{"error", "error_description"}`, 400.
#[derive(Debug)]
struct Refusal {
    error: &'static str,
    description: String,
}

impl Refusal {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        Self::new("invalid_client", description)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        no_store(StatusCode::BAD_REQUEST, Json(body))
    }
}

/// Decoded query or form parameters. Empty values count as absent (RFC 6749 §3.1), and a
/// parameter given twice is refused (RFC 6749 §3.1, §3.2).
struct Params(HashMap<String, String>);

impl Params {
    fn parse(raw: &str) -> Result<Self, Refusal> {
        let mut params = HashMap::new();
        for (name, value) in form_pairs(raw) {
            if value.is_empty() {
                continue;
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(Refusal::invalid_request(format!(
                    "parameter {name:?} is given more than once"
                )));
            }
        }
        Ok(Self(params))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn require(&self, name: &str) -> Result<&str, Refusal> {
        self.get(name)
            .ok_or_else(|| Refusal::invalid_request(format!("{name} is missing")))
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn form_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

/// Form decoding: `+` is a space, `%XX` a byte; a malformed `%` stays as it is.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn random_string() -> String {
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn unix_now() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(now.as_secs()).expect("seconds fit i64")
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    (listener, base)
}

/// Serves `app`, recording every request (404s and 405s included) into `log` first.
fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    log: RequestLog,
) -> tokio::task::JoinHandle<()> {
    let app = app
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))) })
        .layer(axum::middleware::from_fn_with_state(log, record));
    tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("fake OAuth provider serves");
    })
}

async fn record(State(log): State<RequestLog>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let header_text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().into(),
            query: parts.uri.query().unwrap_or("").into(),
            body: String::from_utf8_lossy(&body).into_owned(),
            authorization: parts.headers.get(header::AUTHORIZATION).map(header_text),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| (name.to_string(), header_text(value)))
                .collect(),
        });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// What the provider's `authorize` does: registers `user` under the URL's `state`, GETs the
/// URL without following redirects, and takes code and state from the 302's Location.
async fn sign_in(
    core: &Core,
    path: &str,
    url: &str,
    user: &ProviderUser,
    who: &str,
) -> (String, String) {
    let endpoint = format!("{}{path}", core.base);
    assert!(
        url.strip_prefix(&endpoint)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('?')),
        "{who}: the authorization URL {url} does not point at this provider's {endpoint}"
    );
    let parsed =
        reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{who}: authorization URL {url}: {e}"));
    let state = parsed
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    core.lock().signing_in.insert(state.clone(), user.clone());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client");
    let answer = client.get(url).send().await;
    core.lock().signing_in.remove(&state);
    let answer = answer.unwrap_or_else(|e| panic!("{who}: GET {url}: {e}"));
    let status = answer.status();
    let location = answer
        .headers()
        .get(header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = answer.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::FOUND,
        "{who} refused the authorization request {url}: {status} {body}"
    );
    let location = location.unwrap_or_else(|| panic!("{who}: 302 without Location"));
    let redirect = reqwest::Url::parse(&location)
        .unwrap_or_else(|e| panic!("{who}: the redirect {location} is not an absolute URL: {e}"));
    let param = |name: &str| {
        redirect
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("{who}: no {name} in the redirect {location}"))
    };
    (param("code"), param("state"))
}
