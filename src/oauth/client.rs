//! The one HTTP client that talks to OAuth providers: short timeouts, no redirects, capped
//! answers. A provider's answer is never shown to a client; failures are described for the log
//! only, without the provider's body (it may echo the code or the client secret).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde_json::Value;

use super::ProviderError;
use crate::hooks::outbound::is_internal;

/// Largest answer read from a provider (discovery, JWKS, token, userinfo are a few KiB).
pub(super) const MAX_ANSWER_BYTES: usize = 256 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared by the providers of one tenant (one connection pool each, so one tenant's slow
/// provider holds none of another's connections).
#[derive(Clone)]
pub struct ProviderClient {
    http: reqwest::Client,
    /// Providers a tenant admin configured reach only public addresses, except these hosts.
    guard: Option<Arc<Vec<String>>>,
}

/// Resolves a name for a guarded client, keeping only addresses it may reach: a provider's URL
/// (or its discovery document) naming an internal host must not turn the server into a proxy
/// into the platform's network. Checked on the addresses actually connected to, so a name that
/// resolves differently later (DNS rebinding) gains nothing.
struct GuardedResolver {
    exempt: Arc<Vec<String>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let exempt = self.exempt.iter().any(|h| h.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let usable: Vec<SocketAddr> =
                found.filter(|a| exempt || !is_internal(a.ip())).collect();
            if usable.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(usable.into_iter()) as Addrs)
        })
    }
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderClient")
    }
}

/// How the client authenticates at the token endpoint (RFC 6749 2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret.
    Basic,
    /// `client_id` and `client_secret` in the body.
    Post,
}

impl ProviderClient {
    /// `timeout`: every call, connection included (a sign-in makes at most four).
    pub fn new(timeout: Duration) -> Self {
        Self::build(timeout, None)
    }

    /// A client for providers a tenant admin configured: internal addresses only for the
    /// `exempt` hosts (`[oauth] allowed_internal_hosts`).
    pub fn guarded(timeout: Duration, exempt: Arc<Vec<String>>) -> Self {
        Self::build(timeout, Some(exempt))
    }

    fn build(timeout: Duration, guard: Option<Arc<Vec<String>>>) -> Self {
        let mut builder = reqwest::Client::builder();
        if let Some(exempt) = &guard {
            builder = builder.dns_resolver(Arc::new(GuardedResolver {
                exempt: exempt.clone(),
            }));
        }
        let http = builder
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            // A provider's token or userinfo endpoint never redirects; following one would let
            // a provider (or whoever controls its DNS) send our client secret elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hookauth/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("a client with static settings builds");
        Self { http, guard }
    }

    /// A guarded client refuses a URL naming an internal IP address itself (the resolver
    /// never sees those).
    fn check_target(&self, url: &str, step: &'static str) -> Result<(), ProviderError> {
        let Some(exempt) = &self.guard else {
            return Ok(());
        };
        let parsed = reqwest::Url::parse(url).map_err(|_| ProviderError::Unreachable {
            step,
            reason: "not a URL".into(),
        })?;
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
            _ => return Ok(()),
        };
        let host = parsed.host_str().unwrap_or_default();
        if is_internal(ip) && !exempt.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(ProviderError::Unreachable {
                step,
                reason: format!("{host} is an internal address"),
            });
        }
        Ok(())
    }

    /// GET a JSON document (`bearer`: the provider's access token).
    pub(super) async fn get_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        step: &'static str,
    ) -> Result<Value, ProviderError> {
        self.check_target(url, step)?;
        let mut request = self.http.get(url).header(ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let (status, body) = self.send(request, step).await?;
        if !status.is_success() {
            return Err(ProviderError::Status {
                step,
                status: status.as_u16(),
            });
        }
        parse_json(&body, step)
    }

    /// POST a form to the token endpoint. Answers with an `error` member are failures whatever
    /// the status (GitHub answers 200 with one).
    pub(super) async fn post_token(
        &self,
        url: &str,
        form: &[(&str, &str)],
        client: (&str, &str),
        auth: ClientAuth,
    ) -> Result<Value, ProviderError> {
        const STEP: &str = "token";
        self.check_target(url, STEP)?;
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self.http.post(url).header(ACCEPT, "application/json");
        match auth {
            ClientAuth::Basic => {
                let encode = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", encode(client.0), encode(client.1));
                let mut value = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair)))
                    .map_err(|_| ProviderError::Config("client id or secret".into()))?;
                value.set_sensitive(true);
                request = request.header(AUTHORIZATION, value);
            }
            ClientAuth::Post => {
                fields.push(("client_id", client.0));
                fields.push(("client_secret", client.1));
            }
        }
        let (status, body) = self.send(request.form(&fields), STEP).await?;
        let parsed = parse_json(&body, STEP);
        if let Ok(Value::Object(map)) = &parsed
            && let Some(error) = map.get("error")
        {
            return Err(ProviderError::Refused {
                step: STEP,
                error: error_code(error),
            });
        }
        if !status.is_success() {
            return Err(ProviderError::Status {
                step: STEP,
                status: status.as_u16(),
            });
        }
        parsed
    }

    /// Sends and reads at most [`MAX_ANSWER_BYTES`], whatever the provider claims.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        step: &'static str,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), ProviderError> {
        let mut response = request
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable {
                step,
                reason: describe(&e),
            })?;
        let status = response.status();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(ProviderError::TooLarge { step });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ProviderError::Unreachable {
                step,
                reason: describe(&e),
            })?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ProviderError::TooLarge { step });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

fn parse_json(body: &[u8], step: &'static str) -> Result<Value, ProviderError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ (Value::Object(_) | Value::Array(_))) => Ok(value),
        _ => Err(ProviderError::NotJson { step }),
    }
}

/// A provider's `error` code for the log: OAuth codes are short ASCII words; anything else is
/// not repeated (it could carry the code or a secret back).
fn error_code(error: &Value) -> String {
    match error.as_str() {
        Some(code)
            if code.len() <= 64
                && code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') =>
        {
            code.to_owned()
        }
        _ => "(unreadable)".into(),
    }
}

/// Why a call failed, without the URL's query (which may hold a code).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_redirect() {
        "redirected".into()
    } else {
        "transport error".into()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A one-shot HTTP server on loopback answering every request with `head` and then
    /// `body_bytes` of JSON-ish filler, without a Content-Length when `chunked`.
    async fn serve(body_bytes: usize, declare_length: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let head = if declare_length {
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {body_bytes}\r\n\r\n"
                        )
                    } else {
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         connection: close\r\n\r\n"
                            .to_owned()
                    };
                    let _ = socket.write_all(head.as_bytes()).await;
                    let chunk = vec![b' '; 64 * 1024];
                    let mut sent = 0;
                    while sent < body_bytes {
                        let n = chunk.len().min(body_bytes - sent);
                        if socket.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                    }
                });
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn answers_are_read_up_to_the_cap_whatever_the_provider_declares() {
        let client = ProviderClient::new(Duration::from_secs(5));
        for declare in [true, false] {
            let url = serve(MAX_ANSWER_BYTES + 1, declare).await;
            let err = client.get_json(&url, None, "userinfo").await.unwrap_err();
            assert!(
                matches!(err, ProviderError::TooLarge { .. }),
                "declared length {declare}: {err}"
            );
        }
        // Within the cap a (blank) body is read and refused only for not being JSON.
        let url = serve(1000, false).await;
        let err = client.get_json(&url, None, "userinfo").await.unwrap_err();
        assert!(matches!(err, ProviderError::NotJson { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_guarded_client_reaches_no_internal_address_unless_exempt() {
        let url = serve(2, true).await;
        let port = reqwest::Url::parse(&url).unwrap().port().unwrap();
        let guarded = ProviderClient::guarded(Duration::from_secs(5), Arc::new(vec![]));
        for target in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
        ] {
            let err = guarded
                .get_json(&target, None, "discovery")
                .await
                .unwrap_err();
            let ProviderError::Unreachable { reason, .. } = &err else {
                panic!("{target}: {err}");
            };
            assert!(
                reason.contains("internal") || reason.contains("connection failed"),
                "{target}: {err}"
            );
        }
        // The literal is refused before any connection; a name by its resolved addresses.
        let err = guarded
            .get_json(&format!("http://127.0.0.1:{port}/"), None, "discovery")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("internal address"), "{err}");
        // Exempt hosts are reached (and answer something that is not a JSON document).
        let exempt = ProviderClient::guarded(
            Duration::from_secs(5),
            Arc::new(vec!["127.0.0.1".into(), "localhost".into()]),
        );
        for target in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/"),
        ] {
            let err = exempt
                .get_json(&target, None, "discovery")
                .await
                .unwrap_err();
            assert!(
                matches!(err, ProviderError::NotJson { .. }),
                "{target}: {err}"
            );
        }
    }
}
