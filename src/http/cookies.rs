//! The cookie transport for sessions (`[cookies]`, per tenant; off by default).
//!
//! On, a sign-in (login, MFA verify) and a refresh set three cookies:
//! - `hookauth_access`: the access token, HttpOnly, `Path=/`, for as long as the token lives;
//! - `hookauth_refresh`: the refresh token, HttpOnly, scoped to the tenant's auth routes so
//!   the browser sends it to `/refresh` and `/logout` only;
//! - `hookauth_csrf`: a signed random value the page can read (not HttpOnly).
//!
//! A cookie authenticates only requests that carry no `Authorization` header. On a
//! state-changing method such a request must also send the CSRF cookie's value in
//! `X-CSRF-Token` (double submit): a cross-site form or fetch can make the browser send the
//! cookies but can neither read the CSRF cookie nor set a custom header. The value is an HMAC
//! under a key derived from `secret_key`, so a cookie planted from a sibling domain (which
//! cannot know the key) does not pass either. A request that fails the check is not
//! authenticated by its cookies at all (403 `csrf_failed` where a session was needed), so no
//! route can forget the check.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::AppState;
use crate::config::{CookieConfig, SameSite};
use crate::domain::TenantId;

pub const ACCESS_COOKIE: &str = "hookauth_access";
pub const REFRESH_COOKIE: &str = "hookauth_refresh";
pub const CSRF_COOKIE: &str = "hookauth_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Longest cookie value read; a token is far shorter, a hostile header may not be.
const MAX_COOKIE_VALUE: usize = 4096;

/// Every tenant's cookie settings and the CSRF signing key.
pub struct CookiePolicy {
    default: CookieConfig,
    tenants: BTreeMap<String, CookieConfig>,
    csrf_key: [u8; 32],
    access_max_age_secs: i64,
    refresh_max_age_secs: i64,
}

impl std::fmt::Debug for CookiePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookiePolicy")
            .field("default", &self.default)
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

impl Default for CookiePolicy {
    /// Off for everyone.
    fn default() -> Self {
        Self::new(CookieConfig::default(), BTreeMap::new(), b"unused", 0, 0)
    }
}

impl CookiePolicy {
    pub fn new(
        default: CookieConfig,
        tenants: BTreeMap<String, CookieConfig>,
        server_secret: &[u8],
        access_max_age_secs: i64,
        refresh_max_age_secs: i64,
    ) -> Self {
        // Domain separation: the same secret signs tokens and seals secrets.
        let hk = hkdf::Hkdf::<Sha256>::new(None, server_secret);
        let mut csrf_key = [0u8; 32];
        hk.expand(b"hookauth csrf v1", &mut csrf_key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            default,
            tenants,
            csrf_key,
            access_max_age_secs,
            refresh_max_age_secs,
        }
    }

    /// The tenant's settings when it uses cookies.
    fn for_tenant(&self, tenant: &TenantId) -> Option<&CookieConfig> {
        let config = self.tenants.get(tenant.as_str()).unwrap_or(&self.default);
        config.enabled.then_some(config)
    }

    fn mac(&self, nonce: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("HMAC takes any key length");
        mac.update(nonce.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    fn new_csrf_value(&self) -> String {
        let mut nonce = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let sig = self.mac(&nonce);
        format!("{nonce}.{sig}")
    }

    fn csrf_value_is_ours(&self, value: &str) -> bool {
        let Some((nonce, sig)) = value.split_once('.') else {
            return false;
        };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("HMAC takes any key length");
        mac.update(nonce.as_bytes());
        mac.verify_slice(&sig).is_ok()
    }
}

/// What the request's cookies may be used for, resolved once per request.
#[derive(Debug, Default)]
pub struct CookieCredentials {
    /// The access cookie, when it may authenticate this request.
    pub access: Option<String>,
    /// The refresh cookie, when it may be used by this request.
    pub refresh: Option<String>,
    /// A session cookie was sent on a state-changing request without a valid CSRF token; it
    /// was ignored.
    pub csrf_failed: bool,
}

/// Reads the tenant's session cookies from a request. Cookies count only for a tenant that
/// uses them and only without an `Authorization` header; on a state-changing method, only with
/// a valid CSRF token.
pub(super) fn credentials(app: &AppState, parts: &Parts) -> CookieCredentials {
    let Some(tenant) = parts.extensions.get::<TenantId>() else {
        return CookieCredentials::default();
    };
    if app.cookies.for_tenant(tenant).is_none()
        || parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
    {
        return CookieCredentials::default();
    }
    let access = cookie(&parts.headers, ACCESS_COOKIE);
    let refresh = cookie(&parts.headers, REFRESH_COOKIE);
    if access.is_none() && refresh.is_none() {
        return CookieCredentials::default();
    }
    if is_safe(&parts.method) || csrf_passes(&app.cookies, &parts.headers) {
        CookieCredentials {
            access,
            refresh,
            csrf_failed: false,
        }
    } else {
        CookieCredentials {
            access: None,
            refresh: None,
            csrf_failed: true,
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn csrf_passes(policy: &CookiePolicy, headers: &HeaderMap) -> bool {
    let Some(cookie) = cookie(headers, CSRF_COOKIE) else {
        return false;
    };
    let Some(header) = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    else {
        return false;
    };
    use subtle::ConstantTimeEq as _;
    bool::from(cookie.as_bytes().ct_eq(header.as_bytes())) && policy.csrf_value_is_ours(&cookie)
}

/// The first cookie `name` among the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty() && value.len() <= MAX_COOKIE_VALUE)
        .map(str::to_owned)
}

/// How the responses of the session routes carry tokens for this request's tenant.
pub struct SessionCookies {
    config: Option<CookieConfig>,
    policy: Arc<CookiePolicy>,
    /// Where the refresh cookie is sent: the tenant's auth routes.
    refresh_path: String,
}

impl<S> FromRequestParts<S> for SessionCookies
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let tenant = parts.extensions.get::<TenantId>();
        let config = tenant.and_then(|t| app.cookies.for_tenant(t)).cloned();
        let refresh_path = match tenant {
            Some(t) if t.as_str() != TenantId::DEFAULT => {
                format!("/t/{}{}", t.as_str(), super::API_PREFIX)
            }
            _ => super::API_PREFIX.to_owned(),
        };
        Ok(Self {
            config,
            policy: app.cookies.clone(),
            refresh_path,
        })
    }
}

impl SessionCookies {
    /// A sign-in's or a refresh's answer: the JSON body, plus the cookies when the tenant uses
    /// them (then without the refresh token in the body, unless configured otherwise).
    pub fn signed_in(&self, mut body: Value) -> Response {
        let Some(config) = &self.config else {
            return Json(body).into_response();
        };
        let access = body["access_token"].as_str().unwrap_or_default().to_owned();
        let refresh = body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if config.omit_refresh_from_body {
            body["refresh_token"] = Value::Null;
        }
        let mut response = Json(body).into_response();
        let headers = response.headers_mut();
        let csrf = self.policy.new_csrf_value();
        for (name, value, path, max_age, http_only) in [
            (
                ACCESS_COOKIE,
                access.as_str(),
                "/",
                self.policy.access_max_age_secs,
                true,
            ),
            (
                REFRESH_COOKIE,
                refresh.as_str(),
                self.refresh_path.as_str(),
                self.policy.refresh_max_age_secs,
                true,
            ),
            (
                CSRF_COOKIE,
                csrf.as_str(),
                "/",
                self.policy.refresh_max_age_secs,
                false,
            ),
        ] {
            if value.is_empty() {
                continue;
            }
            append(
                headers,
                set_cookie(config, name, value, path, max_age, http_only),
            );
        }
        response
    }

    /// A sign-out's answer: `status`, and every session cookie expired.
    pub fn signed_out(&self, status: StatusCode) -> Response {
        let mut response = status.into_response();
        if let Some(config) = &self.config {
            let headers = response.headers_mut();
            for (name, path, http_only) in [
                (ACCESS_COOKIE, "/", true),
                (REFRESH_COOKIE, self.refresh_path.as_str(), true),
                (CSRF_COOKIE, "/", false),
            ] {
                append(headers, set_cookie(config, name, "", path, 0, http_only));
            }
        }
        response
    }
}

fn append(headers: &mut HeaderMap, cookie: String) {
    // Built from our own token alphabets and validated settings only.
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(SET_COOKIE, value);
    }
}

fn set_cookie(
    config: &CookieConfig,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    http_only: bool,
) -> String {
    let mut cookie = format!("{name}={value}; Path={path}; Max-Age={}", max_age.max(0));
    if let Some(domain) = &config.domain {
        cookie.push_str("; Domain=");
        cookie.push_str(domain);
    }
    if http_only {
        cookie.push_str("; HttpOnly");
    }
    if config.secure {
        cookie.push_str("; Secure");
    }
    cookie.push_str(match config.same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    });
    cookie
}

/// Headers every response carries (the model's `SecurityHeadersMiddleware`), unless the route
/// set its own (the console sets a stricter policy). Token answers must never be cached.
pub(super) async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let https = request
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next().map(str::trim) == Some("https"));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "geolocation=(), camera=(), microphone=()",
        ),
    ] {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if https && !headers.contains_key("strict-transport-security") {
        headers.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CookiePolicy {
        let on = CookieConfig {
            enabled: true,
            ..CookieConfig::default()
        };
        CookiePolicy::new(
            on,
            BTreeMap::new(),
            b"0123456789abcdef0123456789abcdef",
            900,
            86400,
        )
    }

    #[test]
    fn csrf_values_are_signed_with_the_server_key() {
        let ours = policy();
        let value = ours.new_csrf_value();
        assert!(ours.csrf_value_is_ours(&value));
        let other = CookiePolicy::new(
            CookieConfig::default(),
            BTreeMap::new(),
            b"another secret of thirty-two bytes!!",
            0,
            0,
        );
        assert!(!other.csrf_value_is_ours(&value));
        let (nonce, _) = value.split_once('.').unwrap();
        assert!(!ours.csrf_value_is_ours(&format!("{nonce}.AAAA")));
        assert!(!ours.csrf_value_is_ours("no-dot"));
    }

    #[test]
    fn the_double_submit_needs_both_halves_equal() {
        let policy = policy();
        let value = policy.new_csrf_value();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            format!("a=b; {CSRF_COOKIE}={value}").parse().unwrap(),
        );
        assert!(!csrf_passes(&policy, &headers), "cookie alone");
        headers.insert(CSRF_HEADER, "something-else".parse().unwrap());
        assert!(!csrf_passes(&policy, &headers), "mismatch");
        headers.insert(CSRF_HEADER, value.parse().unwrap());
        assert!(csrf_passes(&policy, &headers));
    }

    #[test]
    fn cookie_attributes_follow_the_settings() {
        let config = CookieConfig {
            enabled: true,
            same_site: SameSite::Strict,
            domain: Some("example.com".into()),
            ..CookieConfig::default()
        };
        let line = set_cookie(&config, ACCESS_COOKIE, "tok", "/", 900, true);
        assert_eq!(
            line,
            "hookauth_access=tok; Path=/; Max-Age=900; Domain=example.com; HttpOnly; Secure; \
             SameSite=Strict"
        );
    }
}
