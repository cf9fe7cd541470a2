//! A client of a running server's management API, for the CLI commands that act on a server
//! rather than on a database (`hooks deploy|list|rm`, `tenant create|list|delete --server`).
//!
//! Deploying goes through the server, never around it: the server validates and compiles the
//! component before it answers, stores it where every replica sees it and applies it at once,
//! so an operator or a tenant admin deploys to a fleet through one URL with one token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode, Url, multipart};
use serde_json::Value;

use crate::domain::TenantId;

/// Where the CLI finds the server when `--server` is not given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8000";
/// Components are compiled before the server answers: a Python or SpiderMonkey component
/// takes tens of seconds on a small machine the first time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error: its `detail` and stable `code`.
    #[error("{detail} ({code}, HTTP {status})")]
    Refused {
        status: u16,
        code: String,
        detail: String,
    },
    #[error("the server's answer to {url} is not the JSON expected: {reason}")]
    BadAnswer { url: String, reason: String },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    BadManifest { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

pub type RemoteResult<T> = Result<T, RemoteError>;

/// The bearer token: an operator token or a tenant admin's access token.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        (!token.trim().is_empty()).then(|| Self(token.trim().to_owned()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// A server and the credentials to manage it.
#[derive(Debug, Clone)]
pub struct Remote {
    base: Url,
    token: Option<Token>,
    http: reqwest::Client,
}

/// What a deploy did.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// `true` for a new hook (201), `false` for a replaced one (200).
    pub created: bool,
    pub hook: Value,
}

impl Remote {
    pub fn new(server: &str, token: Option<Token>) -> RemoteResult<Self> {
        let bad = |reason: &str| RemoteError::BadUrl {
            url: server.to_owned(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(server).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("only http:// and https:// are supported"));
        }
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(bad("a server URL needs a host"));
        }
        if !base.username().is_empty() || base.password().is_some() {
            // Credentials in a URL end up in shell history and process lists.
            return Err(bad("put the token in HOOKAUTH_TOKEN, not in the URL"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // Never follow a redirect with the bearer token to somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Self { base, token, http })
    }

    /// `PUT {T}/hooks/{name}` with the component and, optionally, its manifest (a JSON object
    /// with the hooks.toml keys).
    pub async fn deploy(
        &self,
        tenant: &TenantId,
        name: &str,
        component: &Path,
        manifest: Option<&Path>,
    ) -> RemoteResult<Deployed> {
        let bytes = read(component)?;
        let file_name = component
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{name}.wasm"));
        let part = multipart::Part::bytes(bytes)
            .file_name(file_name)
            .mime_str("application/wasm")
            .expect("a valid MIME type");
        let mut form = multipart::Form::new().part("component", part);
        if let Some(path) = manifest {
            let text = String::from_utf8(read(path)?).map_err(|_| RemoteError::BadManifest {
                path: path.to_owned(),
                reason: "not UTF-8".into(),
            })?;
            // Checked here too so a typo is reported against the file, not as an HTTP error.
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(_)) => {}
                Ok(_) => {
                    return Err(RemoteError::BadManifest {
                        path: path.to_owned(),
                        reason: "a manifest is a JSON object, e.g. {\"events\": [\"after_login\"]}"
                            .into(),
                    });
                }
                Err(e) => {
                    return Err(RemoteError::BadManifest {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    });
                }
            }
            let part = multipart::Part::text(text)
                .mime_str("application/json")
                .expect("a valid MIME type");
            form = form.part("manifest", part);
        }
        let url = self.url(Some(tenant), &["hooks", name])?;
        let request = self.http.request(Method::PUT, url.clone()).multipart(form);
        let (status, body) = self.send(request, &url).await?;
        Ok(Deployed {
            created: status == StatusCode::CREATED,
            hook: body,
        })
    }

    /// `GET {T}/hooks`: the tenant's hooks, platform hooks included.
    pub async fn list_hooks(&self, tenant: &TenantId) -> RemoteResult<Vec<Value>> {
        let url = self.url(Some(tenant), &["hooks"])?;
        let body = self.get(&url).await?;
        list(body, &url)
    }

    /// `DELETE {T}/hooks/{name}`.
    pub async fn remove_hook(&self, tenant: &TenantId, name: &str) -> RemoteResult<()> {
        let url = self.url(Some(tenant), &["hooks", name])?;
        self.send(self.http.request(Method::DELETE, url.clone()), &url)
            .await?;
        Ok(())
    }

    /// `POST /api/v1/tenants` (operator only).
    pub async fn create_tenant(&self, tenant: &TenantId) -> RemoteResult<Value> {
        let url = self.url(None, &["tenants"])?;
        let request = self
            .http
            .request(Method::POST, url.clone())
            .json(&serde_json::json!({ "id": tenant.as_str() }));
        Ok(self.send(request, &url).await?.1)
    }

    /// `GET /api/v1/tenants` (operator only).
    pub async fn list_tenants(&self) -> RemoteResult<Vec<Value>> {
        let url = self.url(None, &["tenants"])?;
        let body = self.get(&url).await?;
        list(body, &url)
    }

    /// `DELETE /api/v1/tenants/{id}` (operator only).
    pub async fn delete_tenant(&self, tenant: &TenantId) -> RemoteResult<()> {
        let url = self.url(None, &["tenants", tenant.as_str()])?;
        self.send(self.http.request(Method::DELETE, url.clone()), &url)
            .await?;
        Ok(())
    }

    async fn get(&self, url: &Url) -> RemoteResult<Value> {
        Ok(self
            .send(self.http.request(Method::GET, url.clone()), url)
            .await?
            .1)
    }

    /// `{base}/api/v1/...` for the default tenant (and tenant-less routes), else
    /// `{base}/t/{tenant}/api/v1/...`. Segments are percent-encoded one by one, so a name can
    /// never climb out of its path (`../`) or add a query.
    fn url(&self, tenant: Option<&TenantId>, rest: &[&str]) -> RemoteResult<Url> {
        let mut url = self.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| RemoteError::Invalid("server URL cannot take a path".into()))?;
            segments.pop_if_empty();
            if let Some(t) = tenant.filter(|t| **t != TenantId::default_tenant()) {
                segments.extend(["t", t.as_str()]);
            }
            segments.extend(["api", "v1"]);
            for part in rest {
                if part.is_empty() || *part == "." || *part == ".." {
                    return Err(RemoteError::Invalid(format!("invalid name {part:?}")));
                }
                segments.push(part);
            }
        }
        url.set_query(None);
        url.set_fragment(None);
        Ok(url)
    }

    /// Sends with the token; a 2xx answer's JSON body (`null` for 204), or the server's
    /// error as [`RemoteError::Refused`].
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        url: &Url,
    ) -> RemoteResult<(StatusCode, Value)> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(&token.0);
        }
        let response = request
            .send()
            .await
            .map_err(|source| RemoteError::Unreachable {
                url: url.to_string(),
                source,
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| RemoteError::Unreachable {
                url: url.to_string(),
                source,
            })?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| RemoteError::BadAnswer {
                url: url.to_string(),
                reason: format!("HTTP {status}: {e}"),
            })?
        };
        if status.is_success() {
            return Ok((status, body));
        }
        let detail = match body.get("detail") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => status
                .canonical_reason()
                .unwrap_or("request failed")
                .to_owned(),
        };
        let code = body
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        Err(RemoteError::Refused {
            status: status.as_u16(),
            code,
            detail,
        })
    }
}

fn read(path: &Path) -> RemoteResult<Vec<u8>> {
    std::fs::read(path).map_err(|source| RemoteError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A list answer: a JSON array, or an object holding one under a single key.
fn list(body: Value, url: &Url) -> RemoteResult<Vec<Value>> {
    match body {
        Value::Array(items) => Ok(items),
        Value::Object(map) => map
            .into_iter()
            .find_map(|(_, v)| match v {
                Value::Array(items) => Some(items),
                _ => None,
            })
            .ok_or_else(|| RemoteError::BadAnswer {
                url: url.to_string(),
                reason: "expected a list".into(),
            }),
        _ => Err(RemoteError::BadAnswer {
            url: url.to_string(),
            reason: "expected a list".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(base: &str) -> Remote {
        Remote::new(base, None).unwrap()
    }

    #[test]
    fn urls_follow_the_tenant_prefixes_and_encode_names() {
        let r = remote("http://127.0.0.1:8000");
        let default = TenantId::default_tenant();
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(
            r.url(Some(&default), &["hooks"]).unwrap().as_str(),
            "http://127.0.0.1:8000/api/v1/hooks"
        );
        assert_eq!(
            r.url(Some(&acme), &["hooks", "mailer"]).unwrap().as_str(),
            "http://127.0.0.1:8000/t/acme/api/v1/hooks/mailer"
        );
        assert_eq!(
            r.url(None, &["tenants"]).unwrap().as_str(),
            "http://127.0.0.1:8000/api/v1/tenants"
        );
        // A name cannot leave its segment.
        assert_eq!(
            r.url(Some(&acme), &["hooks", "a/../b?x=1"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8000/t/acme/api/v1/hooks/a%2F..%2Fb%3Fx=1"
        );
        assert!(r.url(Some(&acme), &["hooks", ".."]).is_err());
        // A server behind a path prefix keeps it.
        let r = remote("https://auth.example.com/base/");
        assert_eq!(
            r.url(Some(&acme), &["hooks"]).unwrap().as_str(),
            "https://auth.example.com/base/t/acme/api/v1/hooks"
        );
    }

    #[test]
    fn server_urls_are_checked() {
        assert!(Remote::new("ftp://example.com", None).is_err());
        assert!(Remote::new("not a url", None).is_err());
        assert!(Remote::new("http://user:pw@example.com", None).is_err());
    }

    #[test]
    fn tokens_are_never_shown() {
        let r = Remote::new("http://127.0.0.1:1", Token::new("s3cret-operator")).unwrap();
        assert!(!format!("{r:?}").contains("s3cret"));
        assert!(Token::new("  ").is_none());
    }
}
