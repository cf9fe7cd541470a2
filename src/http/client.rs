//! Who is calling: client IP (socket peer, or a trusted proxy header), user agent, bearer token
//! and a request id. Extracting it never fails.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;
use crate::domain::RequestContext;

pub struct Client {
    pub ip: IpAddr,
    /// The `Authorization: Bearer` token, or else the tenant's access cookie (`cookies`).
    pub bearer: Option<String>,
    /// The refresh cookie, where the tenant uses cookies and the request passed the CSRF check.
    pub refresh_cookie: Option<String>,
    /// Session cookies came on a state-changing request without a valid CSRF token, and were
    /// ignored.
    pub csrf_failed: bool,
    pub context: RequestContext,
}

/// How to find the client's address behind a proxy we trust.
#[derive(Clone, Debug)]
pub struct ProxyPolicy {
    pub header: Option<String>,
    /// Which entry, counted from the right, is the client (the rightmost is our own proxy's view).
    pub count: usize,
}

impl<S> FromRequestParts<S> for Client
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let ip = client_ip(&parts.headers, peer, &app.proxy);
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 128)
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let cookies = super::cookies::credentials(&app, parts);
        Ok(Client {
            ip,
            bearer: bearer_token(&parts.headers).or(cookies.access),
            refresh_cookie: cookies.refresh,
            csrf_failed: cookies.csrf_failed,
            context: RequestContext {
                request_id,
                client_ip: Some(ip.to_string()),
                user_agent,
            },
        })
    }
}

fn client_ip(headers: &HeaderMap, peer: IpAddr, proxy: &ProxyPolicy) -> IpAddr {
    let Some(header) = &proxy.header else {
        return peer;
    };
    let Some(value) = headers.get(header.as_str()).and_then(|v| v.to_str().ok()) else {
        return peer;
    };
    let entries: Vec<&str> = value.split(',').map(str::trim).collect();
    entries
        .len()
        .checked_sub(proxy.count.max(1))
        .and_then(|i| entries[i].parse().ok())
        .unwrap_or(peer)
}

/// `Authorization: Bearer <token>`, the scheme word in any case.
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_header_is_used_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        let peer: IpAddr = "9.9.9.9".parse().unwrap();
        let untrusted = ProxyPolicy {
            header: None,
            count: 1,
        };
        assert_eq!(client_ip(&headers, peer, &untrusted), peer);
        let trusted = ProxyPolicy {
            header: Some("X-Forwarded-For".into()),
            count: 1,
        };
        assert_eq!(
            client_ip(&headers, peer, &trusted),
            "2.2.2.2".parse::<IpAddr>().unwrap()
        );
        let two = ProxyPolicy {
            header: Some("X-Forwarded-For".into()),
            count: 2,
        };
        assert_eq!(
            client_ip(&headers, peer, &two),
            "1.1.1.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "bEaReR abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).as_deref(), Some("abc"));
        headers.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }
}
