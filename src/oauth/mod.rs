//! Sign-in with OAuth2 / OpenID Connect providers: the providers a tenant configured, and the
//! two things the flows ask of one: where to send the browser, and who came back. Provider
//! presets (Google, GitHub, GitLab, Discord) and the generic `oidc` and `oauth2` kinds live
//! here; state, PKCE and accounts are the flows' (`flows::oauth`).

mod client;
mod oidc;
mod presets;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use client::ClientAuth;
pub use client::ProviderClient;

use crate::config::{OauthConfig, OauthProviderConfig, Secret};
use crate::domain::{OauthUserInfo, TenantId, is_unsafe_char};

/// What kind of provider a configured one is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Google,
    Github,
    Gitlab,
    Discord,
    /// Any OpenID Connect provider: discovery and id_token verification.
    Oidc,
    /// A plain OAuth2 code flow with configured endpoints and a userinfo endpoint that answers
    /// OpenID standard claims.
    Oauth2,
}

impl ProviderKind {
    fn uses_id_token(self) -> bool {
        matches!(
            self,
            ProviderKind::Google | ProviderKind::Gitlab | ProviderKind::Oidc
        )
    }
}

/// Why a provider step failed. For the log only: a client always sees "OAuth authentication
/// failed", never a provider's answer.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{step}: {reason}")]
    Unreachable { step: &'static str, reason: String },
    #[error("{step}: answered HTTP {status}")]
    Status { step: &'static str, status: u16 },
    #[error("{step}: answer larger than {} bytes", client::MAX_ANSWER_BYTES)]
    TooLarge { step: &'static str },
    #[error("{step}: answer is not a JSON document of the expected shape")]
    NotJson { step: &'static str },
    #[error("{step}: provider refused with error `{error}`")]
    Refused { step: &'static str, error: String },
    #[error("id_token rejected: {0}")]
    IdToken(String),
    #[error("user info unusable: {0}")]
    UserInfo(String),
    #[error("configuration: {0}")]
    Config(String),
}

/// An absolute http(s) URL without a fragment.
pub(crate) fn check_url(raw: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(format!("`{raw}` must be an http(s) URL with a host"));
    }
    if url.fragment().is_some() {
        return Err(format!("`{raw}` must not have a #fragment"));
    }
    Ok(())
}

/// A redirect URI is compared exactly, so any absolute URI is accepted (apps use custom schemes
/// such as `com.example.app:/oauth`), but not one with a fragment (RFC 6749 3.1.2).
fn check_redirect_uri(raw: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URI: {e}"))?;
    if url.fragment().is_some() || matches!(url.scheme(), "javascript" | "data" | "file") {
        return Err(format!("`{raw}` is not usable as a redirect URI"));
    }
    Ok(())
}

/// Provider names appear in routes and events: 1–32 of `a-z 0-9 _ -`, starting alphanumeric.
pub fn valid_provider_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Every problem of one `[oauth]` section, each naming its key (`prefix.providers.NAME.key`).
pub fn check_config(prefix: &str, config: &OauthConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if !(1..=60).contains(&config.state_minutes) {
        problems.push(format!(
            "{prefix}.state_minutes must be between 1 and 60 (got {})",
            config.state_minutes
        ));
    }
    for uri in &config.redirect_uris {
        if let Err(e) = check_redirect_uri(uri) {
            problems.push(format!("{prefix}.redirect_uris: {e}"));
        }
    }
    if !(100..=60_000).contains(&config.timeout_ms) {
        problems.push(format!(
            "{prefix}.timeout_ms must be between 100 and 60000 (got {})",
            config.timeout_ms
        ));
    }
    if prefix != "oauth" && !config.allowed_internal_hosts.is_empty() {
        problems.push(format!(
            "{prefix}.allowed_internal_hosts is set in [oauth] only (it applies to every tenant)"
        ));
    }
    let client = ProviderClient::new(Duration::from_millis(config.timeout_ms.max(1)));
    for (name, provider) in &config.providers {
        let key = format!("{prefix}.providers.{name}");
        if !valid_provider_name(name) {
            problems.push(format!(
                "{key}: a provider name is 1-32 of a-z, 0-9, _ and -, starting with a letter \
                 or digit"
            ));
        }
        if let Err(e) = Provider::build(name, provider, &config.redirect_uris, client.clone()) {
            problems.push(format!("{key}: {e}"));
        }
    }
    problems
}

/// The endpoint URLs a provider's configuration sets.
fn configured_urls(config: &OauthProviderConfig) -> impl Iterator<Item = &String> {
    [
        &config.issuer,
        &config.authorize_url,
        &config.token_url,
        &config.userinfo_url,
    ]
    .into_iter()
    .flatten()
}

/// Where a provider's endpoints come from.
#[derive(Debug)]
enum Endpoints {
    /// Configured (or the preset's), used as they are.
    Fixed {
        authorize: String,
        token: String,
        userinfo: String,
    },
    /// From the issuer's discovery document; configured URLs override it.
    Discovered {
        issuer: String,
        authorize: Option<String>,
        token: Option<String>,
        userinfo: Option<String>,
        cache: Box<oidc::Issuer>,
    },
}

/// One configured provider of one tenant. Never printed with its secret.
pub struct Provider {
    name: String,
    kind: ProviderKind,
    client_id: String,
    client_secret: Secret,
    scopes: Vec<String>,
    endpoints: Endpoints,
    redirect_uris: Vec<String>,
    client: ProviderClient,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// What the authorize step needs.
pub struct AuthorizeRequest<'a> {
    pub state: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub nonce: &'a str,
}

/// What the callback step needs.
pub struct CodeExchange<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
    pub nonce: &'a str,
}

impl Provider {
    /// Checks and resolves one provider's configuration (presets filled in).
    pub fn build(
        name: &str,
        config: &OauthProviderConfig,
        shared_redirect_uris: &[String],
        client: ProviderClient,
    ) -> Result<Self, String> {
        let preset = presets::preset(config.kind);
        if config.client_id.trim().is_empty() {
            return Err("client_id must be set".into());
        }
        let client_secret = config
            .client_secret
            .clone()
            .filter(|s| !s.expose().is_empty())
            .ok_or_else(|| {
                format!(
                    "client_secret must be set (prefer the environment: \
                     HOOKAUTH_OAUTH__PROVIDERS__{}__CLIENT_SECRET)",
                    name.to_uppercase()
                )
            })?;
        for url in configured_urls(config) {
            check_url(url)?;
        }
        let pick = |own: &Option<String>, preset: Option<&str>| {
            own.clone().or_else(|| preset.map(str::to_owned))
        };
        let endpoints = if config.kind.uses_id_token() {
            let issuer = pick(&config.issuer, preset.issuer)
                .ok_or("issuer must be set for kind = \"oidc\"")?;
            Endpoints::Discovered {
                issuer,
                authorize: config.authorize_url.clone(),
                token: config.token_url.clone(),
                userinfo: config.userinfo_url.clone(),
                cache: Box::default(),
            }
        } else {
            if config.issuer.is_some() {
                return Err(
                    "issuer is only used by OpenID Connect kinds (oidc, google, gitlab)".into(),
                );
            }
            let need = |own: &Option<String>, preset: Option<&str>, key: &str| {
                pick(own, preset).ok_or(format!("{key} must be set for kind = \"oauth2\""))
            };
            Endpoints::Fixed {
                authorize: need(&config.authorize_url, preset.authorize, "authorize_url")?,
                token: need(&config.token_url, preset.token, "token_url")?,
                userinfo: need(&config.userinfo_url, preset.userinfo, "userinfo_url")?,
            }
        };
        let scopes = config
            .scopes
            .clone()
            .unwrap_or_else(|| preset.scopes.iter().map(|s| (*s).to_owned()).collect());
        if config.kind.uses_id_token() && !scopes.iter().any(|s| s == "openid") {
            return Err("scopes must include \"openid\" for an OpenID Connect provider".into());
        }
        if let Some(bad) = scopes
            .iter()
            .find(|s| s.is_empty() || s.chars().any(|c| c == ' ' || c.is_control()))
        {
            return Err(format!("scope `{bad}` is not a single scope token"));
        }
        let mut redirect_uris = shared_redirect_uris.to_vec();
        for uri in &config.redirect_uris {
            check_redirect_uri(uri)?;
            if !redirect_uris.contains(uri) {
                redirect_uris.push(uri.clone());
            }
        }
        if redirect_uris.is_empty() {
            return Err(
                "no redirect URI allowed: set [oauth] redirect_uris or the provider's own".into(),
            );
        }
        Ok(Self {
            name: name.to_owned(),
            kind: config.kind,
            client_id: config.client_id.clone(),
            client_secret,
            scopes,
            endpoints,
            redirect_uris,
            client,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `redirect_uri` is on this provider's allow-list, compared byte for byte.
    pub fn allows_redirect(&self, redirect_uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == redirect_uri)
    }

    /// The provider's authorization URL for this sign-in (discovery may be fetched first).
    pub async fn authorization_url(
        &self,
        request: AuthorizeRequest<'_>,
    ) -> Result<String, ProviderError> {
        let (authorize, _, _, _) = self.resolve().await?;
        let mut url = reqwest::Url::parse(&authorize)
            .map_err(|e| ProviderError::Config(format!("authorize URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", request.redirect_uri);
            // GitHub's authorize endpoint takes no response_type.
            if self.kind != ProviderKind::Github {
                q.append_pair("response_type", "code");
            }
            if !self.scopes.is_empty() {
                q.append_pair("scope", &self.scopes.join(" "));
            }
            q.append_pair("state", request.state)
                .append_pair("code_challenge", request.code_challenge)
                .append_pair("code_challenge_method", "S256");
            if self.kind.uses_id_token() {
                q.append_pair("nonce", request.nonce);
            }
        }
        Ok(url.into())
    }

    /// Exchanges the code (with the PKCE verifier) and says who signed in: from the verified
    /// id_token for OpenID Connect kinds, from the userinfo endpoint otherwise.
    pub async fn identify(
        &self,
        exchange: CodeExchange<'_>,
    ) -> Result<OauthUserInfo, ProviderError> {
        let client = &self.client;
        let (_, token_url, userinfo_url, oidc) = self.resolve().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", exchange.code),
            ("redirect_uri", exchange.redirect_uri),
            ("code_verifier", exchange.code_verifier),
        ];
        let auth = oidc.as_ref().map_or(ClientAuth::Post, |d| d.client_auth);
        let tokens = client
            .post_token(
                &token_url,
                &form,
                (&self.client_id, self.client_secret.expose()),
                auth,
            )
            .await?;
        let access_token = tokens
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(ProviderError::UserInfo(
                "token answer has no access_token".into(),
            ))?;
        let raw = match (&self.endpoints, oidc) {
            (Endpoints::Discovered { issuer, cache, .. }, Some(discovery)) => {
                let id_token = tokens.get("id_token").and_then(Value::as_str).ok_or(
                    ProviderError::IdToken("token answer has no id_token".into()),
                )?;
                let mut issuers = vec![issuer.as_str()];
                if self.kind == ProviderKind::Google {
                    // Google's id_tokens may name the issuer without its scheme.
                    issuers.push("accounts.google.com");
                }
                let claims = cache
                    .verify(
                        client,
                        &discovery.jwks_uri,
                        id_token,
                        &issuers,
                        &self.client_id,
                        exchange.nonce,
                    )
                    .await?;
                let mut raw = presets::RawInfo {
                    subject: claims.sub,
                    email: claims.email,
                    email_verified: presets::truthy(claims.email_verified.as_ref()),
                    name: claims.name,
                    picture: claims.picture,
                };
                if raw.email.is_none() && !userinfo_url.is_empty() {
                    // The id_token may leave the claims to the userinfo endpoint (OIDC 5.4);
                    // its answer counts only for the same subject (OIDC 5.3.2).
                    let answer = client
                        .get_json(&userinfo_url, Some(access_token), "userinfo")
                        .await?;
                    let more = presets::standard_claims(&answer)?;
                    if more.subject != raw.subject {
                        return Err(ProviderError::UserInfo(
                            "userinfo names another subject than the id_token".into(),
                        ));
                    }
                    raw.email = more.email;
                    raw.email_verified = more.email_verified;
                    raw.name = raw.name.or(more.name);
                    raw.picture = raw.picture.or(more.picture);
                }
                raw
            }
            _ => presets::fetch_user(self.kind, client, &userinfo_url, access_token).await?,
        };
        raw.into_info(&self.name)
    }

    /// (authorize, token, userinfo ("" if none), discovery if OpenID Connect).
    async fn resolve(
        &self,
    ) -> Result<(String, String, String, Option<oidc::Discovery>), ProviderError> {
        match &self.endpoints {
            Endpoints::Fixed {
                authorize,
                token,
                userinfo,
            } => Ok((authorize.clone(), token.clone(), userinfo.clone(), None)),
            Endpoints::Discovered {
                issuer,
                authorize,
                token,
                userinfo,
                cache,
            } => {
                let found = cache.discovery(&self.client, issuer).await?;
                Ok((
                    authorize
                        .clone()
                        .unwrap_or_else(|| found.authorization_endpoint.clone()),
                    token
                        .clone()
                        .unwrap_or_else(|| found.token_endpoint.clone()),
                    userinfo
                        .clone()
                        .or_else(|| found.userinfo_endpoint.clone())
                        .unwrap_or_default(),
                    Some(found),
                ))
            }
        }
    }
}

/// Longest provider-supplied values kept; longer ones are refused (ids, emails) or cut (names).
const MAX_SUBJECT: usize = 255;
const MAX_EMAIL: usize = 254;
const MAX_NAME_CHARS: usize = 200;
const MAX_PICTURE: usize = 2048;

impl presets::RawInfo {
    /// Caps what the provider said before it reaches the database, events and hooks.
    fn into_info(self, provider: &str) -> Result<OauthUserInfo, ProviderError> {
        if self.subject.is_empty()
            || self.subject.len() > MAX_SUBJECT
            || self.subject.chars().any(is_unsafe_char)
        {
            return Err(ProviderError::UserInfo("unusable subject".into()));
        }
        let email = self
            .email
            .filter(|e| !e.is_empty() && e.len() <= MAX_EMAIL && !e.chars().any(is_unsafe_char));
        let name = self.name.map(|n| {
            n.chars()
                .filter(|c| !is_unsafe_char(*c))
                .take(MAX_NAME_CHARS)
                .collect::<String>()
        });
        let picture = self.picture.filter(|p| {
            p.len() <= MAX_PICTURE
                && (p.starts_with("https://") || p.starts_with("http://"))
                && !p.chars().any(is_unsafe_char)
        });
        Ok(OauthUserInfo {
            provider: provider.to_owned(),
            subject: self.subject,
            email_verified: email.is_some() && self.email_verified,
            email,
            name: name.filter(|n| !n.is_empty()),
            picture,
        })
    }
}

/// One tenant's providers and settings: those of the server's file and those its admins
/// configured through the management API.
#[derive(Debug)]
pub struct TenantProviders {
    providers: BTreeMap<String, Arc<Provider>>,
    pub auto_link_by_email: bool,
    pub unverified_email_signup: bool,
    pub state_ttl_secs: i64,
}

impl TenantProviders {
    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.get(name)
    }

    /// Names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }
}

/// A provider as the management API stored it (see `store::StoredOauthProvider`).
pub struct ApiProvider {
    pub name: String,
    /// [`OauthProviderConfig`] as JSON, without the secret.
    pub config: String,
    pub sealed_secret: Vec<u8>,
    pub updated_at: i64,
}

/// How long a replica trusts what it last read of a tenant's API-configured providers: a
/// change made through another replica applies here within this time (through this one, at
/// once).
const API_REFRESH: Duration = Duration::from_secs(5);

/// What was last built from a tenant's API-configured providers.
struct ApiView {
    checked: Instant,
    /// (name, updated_at) of the rows it was built from.
    stamp: Vec<(String, i64)>,
    merged: Arc<TenantProviders>,
}

/// Every tenant's providers: the file's, built once, and the management API's, rebuilt when
/// their rows change (an unchanged provider keeps its discovery and key caches).
pub struct OauthDirectory {
    files: HashMap<TenantId, OauthConfig>,
    built: HashMap<TenantId, BTreeMap<String, Arc<Provider>>>,
    api: RwLock<HashMap<TenantId, ApiView>>,
    sealer: crate::crypto::SecretBox,
    exempt: Arc<Vec<String>>,
    defaults: OauthConfig,
}

impl std::fmt::Debug for OauthDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OauthDirectory")
    }
}

/// What sealed client secrets are bound to, beside the tenant (hook secret names cannot
/// contain `:`, so the two never open each other's values).
fn sealing_key(provider: &str) -> String {
    format!("oauth-provider:{provider}")
}

impl OauthDirectory {
    /// From `[oauth]` (the default tenant) and `[tenants.NAME.oauth]`. The configuration was
    /// checked at load ([`check_config`]); an error here names the section.
    pub fn from_config(
        default: &OauthConfig,
        tenants: &BTreeMap<String, crate::config::TenantConfig>,
        sealer: crate::crypto::SecretBox,
    ) -> Result<Self, String> {
        let mut files = HashMap::new();
        files.insert(TenantId::default_tenant(), default.clone());
        for (name, tenant) in tenants {
            let id = TenantId::parse(name).map_err(|e| format!("[tenants.{name}]: {e}"))?;
            files.insert(id, tenant.oauth.clone());
        }
        let mut built = HashMap::new();
        for (tenant, config) in &files {
            let client = ProviderClient::new(Duration::from_millis(config.timeout_ms));
            let mut providers = BTreeMap::new();
            for (name, provider) in &config.providers {
                let p = Provider::build(name, provider, &config.redirect_uris, client.clone())
                    .map_err(|e| format!("[oauth] of tenant {tenant}: providers.{name}: {e}"))?;
                providers.insert(name.clone(), Arc::new(p));
            }
            built.insert(tenant.clone(), providers);
        }
        Ok(Self {
            files,
            built,
            api: RwLock::default(),
            sealer,
            exempt: Arc::new(default.allowed_internal_hosts.clone()),
            defaults: OauthConfig::default(),
        })
    }

    /// The tenant's `[oauth]` settings (the defaults when the file has none for it).
    pub fn settings(&self, tenant: &TenantId) -> &OauthConfig {
        self.files.get(tenant).unwrap_or(&self.defaults)
    }

    /// Whether the server's file configures provider `name` for the tenant.
    pub fn in_file(&self, tenant: &TenantId, name: &str) -> bool {
        self.settings(tenant).providers.contains_key(name)
    }

    /// The tenant's providers if this replica read its API-configured ones recently.
    pub fn cached(&self, tenant: &TenantId) -> Option<Arc<TenantProviders>> {
        let api = self.api.read().unwrap_or_else(|p| p.into_inner());
        api.get(tenant)
            .filter(|v| v.checked.elapsed() < API_REFRESH)
            .map(|v| v.merged.clone())
    }

    /// Forgets what was read of the tenant's API-configured providers (after a change).
    pub fn invalidate(&self, tenant: &TenantId) {
        self.api
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }

    /// The file's providers with the API-configured `rows` (just read) beside them. A row that
    /// cannot be used (its secret no longer opens, its settings are no longer valid) is left
    /// out and logged when it is first seen.
    pub fn merge(&self, tenant: &TenantId, rows: Vec<ApiProvider>) -> Arc<TenantProviders> {
        let stamp: Vec<(String, i64)> = rows
            .iter()
            .map(|r| (r.name.clone(), r.updated_at))
            .collect();
        let mut api = self.api.write().unwrap_or_else(|p| p.into_inner());
        if let Some(view) = api.get_mut(tenant)
            && view.stamp == stamp
        {
            view.checked = Instant::now();
            return view.merged.clone();
        }
        let settings = self.settings(tenant);
        let mut providers = self.built.get(tenant).cloned().unwrap_or_default();
        let client = ProviderClient::guarded(
            Duration::from_millis(settings.timeout_ms),
            self.exempt.clone(),
        );
        let previous = api.get(tenant);
        for row in rows {
            if providers.contains_key(&row.name) {
                continue; // the file's wins; the API refuses such names anyway
            }
            let unchanged = previous.and_then(|v| {
                v.stamp
                    .contains(&(row.name.clone(), row.updated_at))
                    .then(|| v.merged.get(&row.name).cloned())
                    .flatten()
            });
            let provider = match unchanged {
                Some(p) => Some(p),
                None => match self.open(tenant, &row, settings, client.clone()) {
                    Ok(p) => Some(Arc::new(p)),
                    Err(e) => {
                        tracing::error!(tenant = %tenant, provider = %row.name, error = %e,
                            "an OAuth provider configured through the API is unusable; left out");
                        None
                    }
                },
            };
            if let Some(p) = provider {
                providers.insert(row.name, p);
            }
        }
        let merged = Arc::new(TenantProviders {
            providers,
            auto_link_by_email: settings.auto_link_by_email,
            unverified_email_signup: settings.unverified_email_signup,
            state_ttl_secs: (settings.state_minutes as i64).saturating_mul(60),
        });
        api.insert(
            tenant.clone(),
            ApiView {
                checked: Instant::now(),
                stamp,
                merged: merged.clone(),
            },
        );
        merged
    }

    fn open(
        &self,
        tenant: &TenantId,
        row: &ApiProvider,
        settings: &OauthConfig,
        client: ProviderClient,
    ) -> Result<Provider, String> {
        let mut config: OauthProviderConfig =
            serde_json::from_str(&row.config).map_err(|e| format!("stored settings: {e}"))?;
        let secret = self
            .sealer
            .open(tenant.as_str(), &sealing_key(&row.name), &row.sealed_secret)
            .map_err(|e| e.to_string())?;
        config.client_secret = Some(Secret::new(
            String::from_utf8(secret).map_err(|_| "client secret is not text")?,
        ));
        Provider::build(&row.name, &config, &settings.redirect_uris, client)
    }

    /// Checks a provider a tenant admin wants to configure, as it would be used: everything
    /// [`Provider::build`] checks, and, since anyone with a tenant's admin rights can set
    /// them, https endpoints only (http only for `[oauth] allowed_internal_hosts`).
    pub fn check_api_provider(
        &self,
        tenant: &TenantId,
        name: &str,
        config: &OauthProviderConfig,
    ) -> Result<(), String> {
        if !valid_provider_name(name) {
            return Err(
                "a provider name is 1-32 of a-z, 0-9, _ and -, starting with a letter or digit"
                    .into(),
            );
        }
        for url in configured_urls(config) {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
            let host = parsed.host_str().unwrap_or_default();
            if parsed.scheme() != "https"
                && !self.exempt.iter().any(|h| h.eq_ignore_ascii_case(host))
            {
                return Err(format!("`{url}` must be https"));
            }
        }
        let client = ProviderClient::new(Duration::from_secs(1));
        Provider::build(name, config, &self.settings(tenant).redirect_uris, client).map(|_| ())
    }

    /// Seals a client secret for the tenant's provider `name`.
    pub fn seal_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        secret: &str,
    ) -> Result<Vec<u8>, crate::crypto::SealError> {
        self.sealer
            .seal(tenant.as_str(), &sealing_key(name), secret.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: &str, extra: &str) -> OauthConfig {
        toml::from_str(&format!(
            "redirect_uris = [\"https://app.example/cb\"]\n\
             [providers.p]\nkind = \"{kind}\"\nclient_id = \"id\"\nclient_secret = \"s\"\n{extra}"
        ))
        .unwrap()
    }

    fn problems(config: &OauthConfig) -> String {
        check_config("oauth", config).join("\n")
    }

    #[test]
    fn presets_need_only_their_client() {
        for kind in ["google", "github", "gitlab", "discord"] {
            assert_eq!(problems(&provider(kind, "")), "", "{kind}");
        }
    }

    #[test]
    fn generic_kinds_name_what_they_miss() {
        assert!(problems(&provider("oidc", "")).contains("issuer must be set"));
        let oauth2 = problems(&provider(
            "oauth2",
            "authorize_url = \"https://a.example/a\"",
        ));
        assert!(oauth2.contains("token_url must be set"), "{oauth2}");
        assert_eq!(
            problems(&provider(
                "oauth2",
                "authorize_url = \"https://a.example/a\"\ntoken_url = \"https://a.example/t\"\n\
                 userinfo_url = \"https://a.example/u\""
            )),
            ""
        );
        assert!(
            problems(&provider(
                "oidc",
                "issuer = \"https://a.example\"\nscopes = [\"email\"]"
            ))
            .contains("openid")
        );
        assert!(problems(&provider("github", "issuer = \"https://a.example\"")).contains("issuer"));
    }

    #[test]
    fn secrets_urls_names_and_redirects_are_checked() {
        let mut config = provider("google", "");
        config.providers.get_mut("p").unwrap().client_secret = None;
        assert!(problems(&config).contains("HOOKAUTH_OAUTH__PROVIDERS__P__CLIENT_SECRET"));
        assert!(
            problems(&provider("oidc", "issuer = \"ftp://a.example\"")).contains("http(s)"),
            "only http(s) endpoints"
        );
        let mut config = provider("google", "");
        let p = config.providers.remove("p").unwrap();
        config.providers.insert("Bad Name".into(), p);
        assert!(problems(&config).contains("provider name"));
        let mut config = provider("google", "");
        config.redirect_uris = vec!["https://app.example/cb#frag".into()];
        assert!(problems(&config).contains("not usable as a redirect URI"));
        config.redirect_uris.clear();
        assert!(problems(&config).contains("no redirect URI"));
        config.state_minutes = 0;
        assert!(problems(&config).contains("state_minutes"));
    }

    #[test]
    fn a_provider_never_prints_its_secret() {
        let config = provider("google", "");
        let built = Provider::build(
            "p",
            &config.providers["p"],
            &config.redirect_uris,
            ProviderClient::new(Duration::from_secs(1)),
        )
        .unwrap();
        let printed = format!("{built:?} {config:?}");
        assert!(!printed.contains("client_secret: \"s\""), "{printed}");
        assert!(!printed.contains("\"s\""), "{printed}");
    }

    #[test]
    fn what_a_provider_says_is_capped() {
        let raw = |subject: &str, email: &str, name: &str, picture: &str| presets::RawInfo {
            subject: subject.into(),
            email: Some(email.into()),
            email_verified: true,
            name: Some(name.into()),
            picture: Some(picture.into()),
        };
        assert!(raw("", "a@b.c", "n", "").into_info("p").is_err());
        assert!(raw("x\ny", "a@b.c", "n", "").into_info("p").is_err());
        assert!(
            raw(&"s".repeat(256), "a@b.c", "n", "")
                .into_info("p")
                .is_err()
        );
        let info = raw(
            "s",
            &format!("{}@b.c", "a".repeat(300)),
            &format!("evil\u{202e}{}", "n".repeat(500)),
            "javascript:alert(1)",
        )
        .into_info("p")
        .unwrap();
        assert_eq!(info.email, None);
        assert!(!info.email_verified, "no address, nothing verified");
        assert_eq!(info.name.as_ref().unwrap().chars().count(), MAX_NAME_CHARS);
        assert!(!info.name.unwrap().contains('\u{202e}'));
        assert_eq!(info.picture, None);
    }
}
