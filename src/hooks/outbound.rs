//! Outbound HTTP for hooks: `wasi:http/outgoing-handler`, refused before any socket opens
//! unless the request's scheme, host and port are on the hook's `allowed_hosts`.
//!
//! wasi:http never follows redirects itself, so a redirect to another host is a new request
//! from the guest and goes through the same check. IP literals are allowed only when listed
//! exactly. The check is on the request's authority, which is also what the connection is made
//! to (the `Host` header is set by the host and is a forbidden header for guests).

use std::sync::Arc;

use http::uri::{Scheme, Uri};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One `allowed_hosts` entry: `host` (the scheme's default port, 80 or 443) or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || {
            format!("allowed_hosts entry {raw:?} is not `host` or `host:port` (no scheme or path)")
        };
        if raw.is_empty() || raw.contains(['/', '@', '?', '#', '*', ' ']) {
            return Err(bad());
        }
        let authority: http::uri::Authority = raw.parse().map_err(|_| bad())?;
        Ok(Self {
            host: normalize_host(authority.host()),
            port: authority.port_u16(),
        })
    }

    fn allows(&self, host: &str, port: u16, default_port: u16) -> bool {
        self.host == host && self.port.unwrap_or(default_port) == port
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a request URI may be sent; `Err` says why not.
pub fn check_uri(allowed: &[AllowedHost], uri: &Uri) -> Result<(), String> {
    let default_port = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => 443,
        Some(s) if *s == Scheme::HTTP => 80,
        other => return Err(format!("scheme {other:?} is not http or https")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| "the request has no host".to_owned())?;
    // `user@host`: the connection is made to the whole authority string, so a userinfo part
    // could make the checked host differ from the dialled one. Never needed by an API client.
    if authority.as_str().contains('@') {
        return Err("credentials in the URL's authority are not allowed".to_owned());
    }
    let host = normalize_host(authority.host());
    let port = authority.port_u16().unwrap_or(default_port);
    if allowed.iter().any(|a| a.allows(&host, port, default_port)) {
        Ok(())
    } else {
        Err(format!("{host}:{port} is not in the hook's allowed_hosts"))
    }
}

/// The per-invocation `WasiHttpHooks`: checks each request, records refusals for the log.
pub struct OutboundPolicy {
    allowed: Arc<[AllowedHost]>,
    /// Why each refused request was refused, in order (logged by the invoker).
    pub refused: Vec<String>,
    /// Requests let through, as `METHOD scheme://authority/path`.
    pub sent: Vec<String>,
}

impl OutboundPolicy {
    pub fn new(allowed: Arc<[AllowedHost]>) -> Self {
        Self {
            allowed,
            refused: Vec::new(),
            sent: Vec::new(),
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let uri = request.uri().clone();
        if let Err(reason) = check_uri(&self.allowed, &uri) {
            self.refused
                .push(format!("{} {uri}: {reason}", request.method()));
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        self.sent.push(format!("{} {uri}", request.method()));
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str]) -> Vec<AllowedHost> {
        list.iter()
            .map(|s| AllowedHost::parse(s).unwrap())
            .collect()
    }

    fn check(list: &[&str], uri: &str) -> Result<(), String> {
        check_uri(&allowed(list), &uri.parse().unwrap())
    }

    #[test]
    fn a_bare_host_allows_its_default_ports_only() {
        let list = ["api.mailer.example"];
        assert!(check(&list, "https://api.mailer.example/send").is_ok());
        assert!(check(&list, "http://API.Mailer.Example./send").is_ok());
        assert!(check(&list, "https://api.mailer.example:8443/send").is_err());
        assert!(check(&list, "https://evil.example/").is_err());
        assert!(check(&list, "https://api.mailer.example.evil.example/").is_err());
    }

    #[test]
    fn ip_literals_must_be_listed_exactly() {
        let list = ["127.0.0.1:8025"];
        assert!(check(&list, "http://127.0.0.1:8025/").is_ok());
        assert!(check(&list, "http://127.0.0.1:8026/").is_err());
        assert!(check(&list, "http://127.0.0.2:8025/").is_err());
        assert!(check(&list, "http://[::1]:8025/").is_err());
        assert!(check(&list, "http://localhost:8025/").is_err());
        assert!(check(&list, "ftp://127.0.0.1:8025/").is_err());
    }

    #[test]
    fn userinfo_cannot_disguise_the_host() {
        let list = ["127.0.0.1:8025"];
        assert!(check(&list, "http://evil.example:80@127.0.0.1:8025/").is_err());
        assert!(check(&list, "http://user@127.0.0.1:8025/").is_err());
    }

    #[test]
    fn entries_are_hosts_not_urls() {
        assert!(AllowedHost::parse("https://api.example").is_err());
        assert!(AllowedHost::parse("api.example/path").is_err());
        assert!(AllowedHost::parse("*.example").is_err());
        assert!(AllowedHost::parse("[::1]:80").is_ok());
    }
}
