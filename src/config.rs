//! One typed configuration, layered: defaults < `hookauth.toml` (or `--config FILE`) <
//! `HOOKAUTH_*` environment variables < command-line flags. Unknown keys are an error naming the
//! key. `hookauth.example.toml` at the repository root documents every setting.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::{FieldType, PasswordPolicy, ProfileSchema};
use crate::store::DatabaseUrl;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error(
        "secret_key must be at least 32 bytes (got {0}); generate one with `openssl rand -hex 32`"
    )]
    SecretTooShort(usize),
}

/// Environment variables with our prefix that are not configuration keys.
const ENV_NOT_CONFIG: &[&str] = &["HOOKAUTH_CONFIG", "HOOKAUTH_LOG"];
const ENV_PREFIX: &str = "HOOKAUTH_";

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// `sqlite://FILE` (embedded default) or `postgres://...` (scale-out).
    pub database_url: DatabaseUrl,
    /// HMAC key for access tokens, at least 32 bytes. Unset: a random key per process.
    pub secret_key: Option<Secret>,
    /// Bearer token of the platform operator: manages tenants and any tenant's hooks. Unset:
    /// no operator access over HTTP.
    pub operator_token: Option<Secret>,
    /// `text` (for people) or `json` (one object per line, for log collectors).
    pub log_format: LogFormat,
    pub hooks: HooksConfig,
    pub tenant_hooks: TenantHooksConfig,
    pub database: DatabaseConfig,
    pub jwt: JwtConfig,
    pub password: PasswordConfig,
    pub tokens: TokenConfig,
    pub security: SecurityConfig,
    pub lockout: LockoutConfig,
    pub rate_limit: RateLimitConfig,
    pub delivery: DeliveryConfig,
    pub server: ServerConfig,
    /// `/metrics` (`[metrics]`).
    pub metrics: MetricsConfig,
    /// TOTP second factor (`[mfa]`).
    pub mfa: MfaConfig,
    /// Cookie transport for sessions (`[cookies]`), for every tenant without its own
    /// `[tenants.NAME.cookies]`.
    pub cookies: CookieConfig,
    /// Custom profile fields: name = "string" | "integer" | "number" | "boolean".
    pub profile_fields: BTreeMap<String, FieldType>,
    /// Sign-in with OAuth2 / OpenID Connect providers, for the default tenant.
    pub oauth: OauthConfig,
    /// Settings of named tenants (`[tenants.NAME.oauth]`), keyed by tenant name.
    pub tenants: BTreeMap<String, TenantConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8000".into(),
            database_url: DatabaseUrl::from("sqlite://hookauth.db"),
            secret_key: None,
            operator_token: None,
            log_format: LogFormat::Text,
            hooks: HooksConfig::default(),
            tenant_hooks: TenantHooksConfig::default(),
            database: DatabaseConfig::default(),
            jwt: JwtConfig::default(),
            password: PasswordConfig::default(),
            tokens: TokenConfig::default(),
            security: SecurityConfig::default(),
            lockout: LockoutConfig::default(),
            rate_limit: RateLimitConfig::default(),
            delivery: DeliveryConfig::default(),
            server: ServerConfig::default(),
            metrics: MetricsConfig::default(),
            mfa: MfaConfig::default(),
            cookies: CookieConfig::default(),
            profile_fields: BTreeMap::new(),
            oauth: OauthConfig::default(),
            tenants: BTreeMap::new(),
        }
    }
}

/// How the server writes its log (stderr).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[oauth]` (the default tenant) and `[tenants.NAME.oauth]`: which providers users may sign in
/// with, where a provider may send the browser back to, and how accounts are matched.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OauthConfig {
    /// Exact allow-list of `redirect_uri`s for every provider (each provider may add its own).
    pub redirect_uris: Vec<String>,
    /// A first sign-in whose provider-verified email belongs to an account links to it.
    pub auto_link_by_email: bool,
    /// A first sign-in with an address the provider did not verify creates an (unverified)
    /// account, as fastapi-fullauth does. `false` refuses it: the address's owner could
    /// otherwise take the account over later with a password reset while the provider account
    /// stays linked.
    pub unverified_email_signup: bool,
    /// How long a started sign-in (its signed state) stays usable.
    pub state_minutes: u64,
    /// Longest one call to a provider may take, connecting included.
    pub timeout_ms: u64,
    /// Keyed by the name that appears in the routes (`/oauth/{name}/...`).
    pub providers: BTreeMap<String, OauthProviderConfig>,
    /// `[oauth]` only: hosts (names or IPs) with internal addresses that providers configured
    /// through the management API may use (e.g. an identity provider on the private network).
    /// Every other such provider reaches only public addresses, over https.
    pub allowed_internal_hosts: Vec<String>,
}

impl Default for OauthConfig {
    fn default() -> Self {
        Self {
            redirect_uris: Vec::new(),
            auto_link_by_email: true,
            unverified_email_signup: true,
            state_minutes: 5,
            timeout_ms: 10_000,
            providers: BTreeMap::new(),
            allowed_internal_hosts: Vec::new(),
        }
    }
}

/// `[oauth.providers.NAME]`, and the body of `PUT {T}/oauth-providers/{name}`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OauthProviderConfig {
    pub kind: crate::oauth::ProviderKind,
    pub client_id: String,
    /// Prefer the environment: `HOOKAUTH_OAUTH__PROVIDERS__NAME__CLIENT_SECRET`. Never
    /// serialised: the management API seals it apart.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<Secret>,
    /// Unset: the kind's defaults.
    pub scopes: Option<Vec<String>>,
    /// OpenID Connect issuer: discovery and id_token verification (`oidc`; presets set theirs).
    pub issuer: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    /// Answers OpenID standard claims (`sub`, `email`, `email_verified`, `name`, `picture`),
    /// except for the presets, which know their provider's shape.
    pub userinfo_url: Option<String>,
    /// Added to `[oauth] redirect_uris` for this provider.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

/// `[tenants.NAME]`: what a named tenant configures for itself in the server's file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantConfig {
    pub oauth: OauthConfig,
    /// Replaces `[cookies]` for this tenant (every key; unset keys take their defaults).
    pub cookies: Option<CookieConfig>,
}

/// `[mfa]`: the TOTP second factor. On, a user may enrol (`POST /mfa/enroll`); sign-in asks
/// enrolled users for a code. Off, the `/mfa` routes answer 404 and nobody is asked.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfaConfig {
    pub enabled: bool,
    /// The name authenticator apps show next to the account.
    pub issuer: String,
    /// Lifetime of the `mfa_token` a correct password answers with.
    pub pending_seconds: u64,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            issuer: "hookauth".into(),
            pending_seconds: 300,
        }
    }
}

/// `[cookies]`: sessions carried in cookies instead of the JSON body and the bearer header.
/// Off by default. On, login, refresh and MFA verify set an HttpOnly access cookie, an
/// HttpOnly refresh cookie (scoped to the auth routes) and a CSRF cookie readable by the page;
/// a state-changing request that a cookie authenticates must echo the CSRF cookie in the
/// `X-CSRF-Token` header.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CookieConfig {
    pub enabled: bool,
    /// `Secure` (sent over HTTPS only). Turn off only for local development over plain HTTP.
    pub secure: bool,
    pub same_site: SameSite,
    /// `Domain`; unset: host-only cookies (the safest).
    pub domain: Option<String>,
    /// Leave the refresh token out of JSON bodies (it then lives only in its HttpOnly cookie).
    pub omit_refresh_from_body: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            secure: true,
            same_site: SameSite::Lax,
            domain: None,
            omit_refresh_from_body: true,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    Strict,
    #[default]
    Lax,
    None,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    /// Directory of Wasm hooks for the default tenant: every `*.wasm` is a hook, run in file-name
    /// order, with an optional `hooks.toml` beside them. Unset: `hooks/` if it exists.
    pub dir: Option<PathBuf>,
    /// Skip hooks that fail validation (with a warning) instead of refusing to start.
    pub lenient: bool,
    /// Compiled hooks are cached here, authenticated with a key derived from `secret_key`.
    /// Created 0700; refused unless owned by the server's user and not group/world-writable.
    /// Unset: `$XDG_CACHE_HOME/hookauth`, else `$HOME/.cache/hookauth`, else no cache. Never
    /// inside the hooks directory by default: whoever deploys a `.wasm` must not choose native
    /// code.
    pub cache_dir: Option<PathBuf>,
    /// Hook invocations that may run at once; more wait for a slot.
    pub max_concurrent: u32,
    /// Largest platform hook component, in MiB (1-4096).
    pub max_component_mib: u32,
    /// Longest a platform hook may take to compile, in ms; a slower one is refused (a compile
    /// bomb). At least 100.
    pub compile_timeout_ms: u64,
    /// Environment variables hooks.toml may name as secrets: names, `*` matching any run of
    /// characters. Names starting with `HOOKAUTH_` (the server's own) are always refused.
    pub secret_env_allow: Vec<String>,
    // --- What one invocation may make the host do or keep (every hook, platform and tenant);
    // defaults and ranges in hooks::limits::SandboxCaps. ---
    /// Outbound requests one invocation may start (refused ones included).
    pub outbound_max_requests: u32,
    /// Outbound requests of one invocation in flight at once.
    pub outbound_max_concurrent: u32,
    /// Outbound requests of one hook in flight at once, over all of its invocations.
    pub outbound_max_concurrent_per_hook: u32,
    /// Response body bytes one invocation may read, over all of its requests.
    pub outbound_max_response_bytes: u64,
    /// `host.log` lines kept per invocation.
    pub log_max_lines: u32,
    /// Bytes of `host.log` messages and fields kept per invocation.
    pub log_max_bytes: usize,
    /// Bytes kept of a hook's `err(...)` string (logged and stored as the delivery's error).
    pub error_max_bytes: usize,
    /// WASI handles (streams, pollables, HTTP resources) one invocation may hold at once.
    pub max_resources: usize,
    // --- Gate hooks (WIT 0.2.0 `gate`): they run inline, so their budgets are strict. ---
    /// Wall clock per gate decision, unless the hook's `gate_timeout_ms` says otherwise.
    pub gate_timeout_ms: u64,
    /// Fuel per gate decision, unless the hook's `gate_fuel` says otherwise.
    pub gate_fuel: u64,
    /// Ceiling for a hook's `gate_timeout_ms` (platform and tenant hooks).
    pub gate_max_timeout_ms: u64,
    /// Ceiling for a hook's `gate_fuel`.
    pub gate_max_fuel: u64,
    /// All custom claims of one access token together, as JSON bytes.
    pub max_claims_bytes: usize,
    /// Days gate decisions are kept in the audit.
    pub gate_audit_days: u32,
}

impl Default for HooksConfig {
    fn default() -> Self {
        let caps = crate::hooks::SandboxCaps::default();
        Self {
            dir: None,
            lenient: false,
            cache_dir: None,
            max_concurrent: 1000,
            max_component_mib: crate::hooks::compile::DEFAULT_MAX_COMPONENT_MIB,
            compile_timeout_ms: crate::hooks::compile::DEFAULT_COMPILE_TIMEOUT.as_millis() as u64,
            secret_env_allow: crate::hooks::manifest::DEFAULT_SECRET_ENV_ALLOW
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            outbound_max_requests: caps.outbound_requests,
            outbound_max_concurrent: caps.outbound_concurrent,
            outbound_max_concurrent_per_hook: caps.outbound_concurrent_per_hook,
            outbound_max_response_bytes: caps.outbound_response_bytes,
            log_max_lines: caps.log_lines,
            log_max_bytes: caps.log_bytes,
            error_max_bytes: caps.error_bytes,
            max_resources: caps.resources,
            gate_timeout_ms: crate::hooks::DEFAULT_GATE_TIMEOUT.as_millis() as u64,
            gate_fuel: crate::hooks::DEFAULT_GATE_FUEL,
            gate_max_timeout_ms: 5_000,
            gate_max_fuel: 1_000_000_000,
            max_claims_bytes: 4096,
            gate_audit_days: 30,
        }
    }
}

impl HooksConfig {
    /// Gate budgets: the defaults a hook gets and the ceilings its overrides must stay within.
    pub fn gate_budgets(&self) -> crate::hooks::GateBudgets {
        crate::hooks::GateBudgets {
            timeout: std::time::Duration::from_millis(self.gate_timeout_ms),
            fuel: self.gate_fuel,
            max_timeout: std::time::Duration::from_millis(self.gate_max_timeout_ms),
            max_fuel: self.gate_max_fuel,
        }
    }

    /// What the flows' gate machinery reads.
    pub fn gate_settings(&self) -> crate::flows::GateSettings {
        crate::flows::GateSettings {
            max_claims_bytes: self.max_claims_bytes,
            audit_retention: std::time::Duration::from_secs(
                u64::from(self.gate_audit_days) * 86_400,
            ),
        }
    }

    /// The per-invocation caps these settings ask for (checked in `Config::check`).
    pub fn sandbox_caps(&self) -> crate::hooks::SandboxCaps {
        crate::hooks::SandboxCaps {
            outbound_requests: self.outbound_max_requests,
            outbound_concurrent: self.outbound_max_concurrent,
            outbound_concurrent_per_hook: self.outbound_max_concurrent_per_hook,
            outbound_response_bytes: self.outbound_max_response_bytes,
            log_lines: self.log_max_lines,
            log_bytes: self.log_max_bytes,
            error_bytes: self.error_max_bytes,
            resources: self.max_resources,
        }
    }
}

/// Bounds on compile ceilings: below this a real hook cannot compile; above, the limit is
/// meaningless.
const MIN_COMPILE_TIMEOUT_MS: u64 = 100;
const MAX_COMPONENT_MIB: u32 = 4096;

impl HooksConfig {
    /// The `[hooks]` values, checked (called when hooks are loaded).
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.max_component_mib == 0 || self.max_component_mib > MAX_COMPONENT_MIB {
            return Err(ConfigError::Invalid(format!(
                "hooks.max_component_mib must be 1-{MAX_COMPONENT_MIB}, not {}",
                self.max_component_mib
            )));
        }
        if self.compile_timeout_ms < MIN_COMPILE_TIMEOUT_MS {
            return Err(ConfigError::Invalid(format!(
                "hooks.compile_timeout_ms must be at least {MIN_COMPILE_TIMEOUT_MS}, not {}",
                self.compile_timeout_ms
            )));
        }
        let gate = |key: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::Invalid(format!(
                    "hooks.{key} must be {}-{}, not {value}",
                    range.start(),
                    range.end()
                )))
            }
        };
        gate("gate_max_timeout_ms", self.gate_max_timeout_ms, 1..=600_000)?;
        gate("gate_max_fuel", self.gate_max_fuel, 1..=u64::MAX / 2)?;
        gate(
            "gate_timeout_ms",
            self.gate_timeout_ms,
            1..=self.gate_max_timeout_ms,
        )?;
        gate("gate_fuel", self.gate_fuel, 1..=self.gate_max_fuel)?;
        gate("max_claims_bytes", self.max_claims_bytes as u64, 2..=65_536)?;
        gate("gate_audit_days", u64::from(self.gate_audit_days), 1..=3650)?;
        if let Some(bad) = self
            .secret_env_allow
            .iter()
            .find(|p| !crate::hooks::manifest::valid_env_pattern(p))
        {
            return Err(ConfigError::Invalid(format!(
                "hooks.secret_env_allow: {bad:?} is not a variable name pattern (letters, \
                 digits, '_' and '*')"
            )));
        }
        Ok(())
    }
}

/// What tenants may deploy through the API (`[tenant_hooks]`). The ceilings bound every tenant
/// hook; a manifest asking for more is refused at deploy.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantHooksConfig {
    /// Hooks one tenant may deploy through the API.
    pub max_hooks: u32,
    /// Largest component accepted, in MiB.
    pub max_component_mib: u32,
    /// Ceiling (and default) for a tenant hook's fuel per event.
    pub fuel: u64,
    /// Ceiling for a tenant hook's linear memory, in MiB (the default is the server's 16 MiB,
    /// or this when lower).
    pub memory_mib: u32,
    /// Ceiling for a tenant hook's wall clock per event.
    pub timeout_ms: u64,
    /// Hosts tenant hooks may be granted: `api.example.com`, `*.example.com`, `host:port`, or
    /// `"*"` for any public host. Loopback, private and link-local addresses only when listed
    /// exactly (`127.0.0.1:9100`).
    pub allowed_hosts: Vec<String>,
    /// Compiles of tenant components that may run at once (each takes a core).
    pub compile_concurrency: u32,
    /// Longest a tenant component may take to compile, in ms: a deploy over it is refused
    /// (`compile_timeout`). At least 100.
    pub compile_timeout_ms: u64,
}

impl TenantHooksConfig {
    /// The `[tenant_hooks]` compile values, checked (called when hooks are loaded).
    pub fn check_compile(&self) -> Result<(), ConfigError> {
        if self.max_component_mib > MAX_COMPONENT_MIB {
            return Err(ConfigError::Invalid(format!(
                "tenant_hooks.max_component_mib must be at most {MAX_COMPONENT_MIB}"
            )));
        }
        if self.compile_timeout_ms < MIN_COMPILE_TIMEOUT_MS {
            return Err(ConfigError::Invalid(format!(
                "tenant_hooks.compile_timeout_ms must be at least {MIN_COMPILE_TIMEOUT_MS}, \
                 not {}",
                self.compile_timeout_ms
            )));
        }
        Ok(())
    }
}

impl Default for TenantHooksConfig {
    fn default() -> Self {
        Self {
            max_hooks: 10,
            max_component_mib: 16,
            fuel: 100_000_000,
            memory_mib: 64,
            timeout_ms: 2_000,
            allowed_hosts: Vec::new(),
            compile_concurrency: 1,
            compile_timeout_ms: crate::hooks::compile::DEFAULT_TENANT_COMPILE_TIMEOUT.as_millis()
                as u64,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Pool size for reads (SQLite) or for everything (PostgreSQL).
    pub max_connections: u32,
    /// SQLite `synchronous` pragma: "normal" (durable across process crashes; the last
    /// transactions can be lost on power failure) or "full" (fsync on every commit).
    pub sqlite_synchronous: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            sqlite_synchronous: "normal".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// HS256, HS384 or HS512; tokens signed with anything else are rejected.
    pub algorithm: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub access_token_minutes: u64,
    pub refresh_token_days: u64,
    pub leeway_seconds: u64,
    pub refresh_rotation: bool,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            algorithm: "HS256".into(),
            issuer: None,
            audience: None,
            access_token_minutes: 30,
            refresh_token_days: 30,
            leeway_seconds: 30,
            refresh_rotation: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    pub min_length: usize,
    /// 0 = no cap.
    pub max_length: usize,
    /// Character classes a new password must contain (Unicode-aware); off by default, as
    /// NIST SP 800-63B advises.
    pub require_lowercase: bool,
    pub require_uppercase: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
    /// Refuse a password containing the email's name (the part before `@`, 3+ characters).
    pub forbid_email_local_part: bool,
    /// Refuse the 19,640 common passwords bundled from Django's list.
    pub forbid_common: bool,
    /// argon2id parameters; the defaults are OWASP's recommendation (m=19 MiB, t=2, p=1).
    /// Hashes made with other parameters are upgraded at the next successful login.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 4096,
            require_lowercase: false,
            require_uppercase: false,
            require_digit: false,
            require_symbol: false,
            forbid_email_local_part: true,
            forbid_common: true,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    pub email_verify_minutes: u64,
    pub password_reset_minutes: u64,
    /// Verification emails one account can be sent per hour; further requests get the same
    /// answer and send nothing. At least 1.
    pub email_verify_emails_per_hour: u32,
    /// Password-reset emails one account can be sent per hour, however many clients ask;
    /// further requests get the same answer and send nothing. At least 1.
    pub password_reset_emails_per_hour: u32,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            email_verify_minutes: 1440,
            password_reset_minutes: 15,
            email_verify_emails_per_hour: 5,
            password_reset_emails_per_hour: 5,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// A session younger than this may delete the account or set a first password without
    /// re-entering a password.
    pub reauth_max_age_seconds: u64,
    /// Register answers 202 whether or not the email exists.
    pub prevent_registration_enumeration: bool,
    /// Request bodies above this size get 413.
    pub max_body_bytes: usize,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            reauth_max_age_seconds: 300,
            prevent_registration_enumeration: true,
            max_body_bytes: 64 * 1024,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutConfig {
    pub enabled: bool,
    pub max_attempts: u32,
    pub duration_minutes: u64,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_attempts: 5,
            duration_minutes: 15,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub window_seconds: u64,
    /// A header such as "X-Forwarded-For" set by a proxy you trust. Unset: the socket peer.
    pub trusted_proxy_header: Option<String>,
    /// Which entry, counted from the right of the header's comma list, is the client.
    pub trusted_proxy_count: usize,
    pub limits: RateLimits,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: 60,
            trusted_proxy_header: None,
            trusted_proxy_count: 1,
            limits: RateLimits::default(),
        }
    }
}

/// Requests per window per client IP, by route bucket.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub login: u32,
    pub register: u32,
    pub refresh: u32,
    pub reauth: u32,
    pub verify_email: u32,
    pub password_reset: u32,
    /// `/mfa/verify` and `/mfa/confirm`.
    pub mfa: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login: 5,
            register: 3,
            refresh: 30,
            reauth: 5,
            verify_email: 3,
            password_reset: 3,
            mfa: 5,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Hook invocations in flight at once on this replica. 0: 64 per CPU core (invocations
    /// mostly wait on the network, so lanes are cheap; the backlog itself stays in the database).
    pub concurrency: u32,
    /// Most lanes one tenant may hold. 0: three quarters of `concurrency`, so a tenant whose
    /// hooks are slow or whose backlog is deep always leaves room for the others.
    pub tenant_concurrency: u32,
    /// Most lanes one hook (of one tenant) may hold. 0: half of `concurrency`.
    pub hook_concurrency: u32,
    /// Attempts per hook before its delivery is recorded as failed (`hookauth hooks failures`).
    pub max_attempts: u32,
    /// Retries wait this long, doubling per attempt up to `backoff_max_ms`, with jitter.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Events fanned out (and outcomes written) per transaction.
    pub batch_size: u32,
    /// How long a claim holds without a heartbeat (renewed every third of it). A replica that
    /// dies loses its claims after at most this long, plus one poll.
    pub lease_ms: u64,
    /// Longest sleep while idle: how soon retries, expired claims and other replicas' settled
    /// work are noticed without a wake-up.
    pub poll_ms: u64,
    /// Consecutive failed attempts that open a hook's circuit. 0: no circuit breaker.
    pub breaker_failures: u32,
    /// An open circuit is probed after this pause, doubled per failed probe up to 10 minutes.
    pub breaker_pause_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            concurrency: 0,
            tenant_concurrency: 0,
            hook_concurrency: 0,
            max_attempts: 5,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 300_000,
            batch_size: 64,
            // With the 1 s poll, a dead replica's claims are taken over within 10 s.
            lease_ms: 8_000,
            poll_ms: 1_000,
            breaker_failures: 5,
            breaker_pause_ms: 5_000,
        }
    }
}

/// `[metrics]`: where Prometheus scrapes. `/metrics` on the main address always answers the
/// operator token (`Authorization: Bearer`); `bind` adds a second listener that serves only
/// `/metrics`, without a token, for a scraper on a private network.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `HOST:PORT` of the metrics-only listener; unset: none.
    pub bind: Option<String>,
}

/// The connection layer (`[server]`): what one client may hold and for how long.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// A request's head (request line and headers) must arrive within this long of the first
    /// byte (or of accepting the connection), else the connection is closed.
    pub header_read_timeout_ms: u64,
    /// A request's body must arrive within this long of its head, else 408.
    pub body_read_timeout_ms: u64,
    /// A connection with no bytes moving either way for this long, and no request being
    /// handled, is closed (idle keep-alive, and clients that stop reading responses).
    pub idle_timeout_ms: u64,
    /// Connections open at once; more wait in the kernel's accept queue.
    pub max_connections: u32,
    /// Connections open at once from one peer address; more are answered 429 and closed.
    /// Behind a reverse proxy every connection comes from the proxy: raise it accordingly.
    pub max_connections_per_ip: u32,
    /// Largest request head (request line and headers) in bytes; larger gets 431.
    pub max_header_bytes: u32,
    /// At shutdown, requests in flight get this long to finish before their connections are
    /// closed.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            max_connections: 4_096,
            max_connections_per_ip: 256,
            max_header_bytes: 32 * 1024,
            shutdown_grace_ms: 10_000,
        }
    }
}

impl DeliveryConfig {
    /// `concurrency`, `tenant_concurrency` and `hook_concurrency` with their defaults resolved.
    pub fn lanes(&self) -> (usize, usize, usize) {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let total = match self.concurrency {
            0 => 64 * cores,
            n => n as usize,
        };
        let share = |configured: u32, num: usize, den: usize| match configured {
            0 => (total * num / den).max(1),
            n => (n as usize).min(total),
        };
        (
            total,
            share(self.tenant_concurrency, 3, 4),
            share(self.hook_concurrency, 1, 2),
        )
    }
}

/// A secret string that never reaches `Debug` or logs.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, compared in constant time (a bearer token, say).
    pub fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Values given on the command line, the top layer.
#[derive(Default, Debug)]
pub struct Overrides {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    pub hooks_dir: Option<PathBuf>,
    pub lenient_hooks: bool,
}

impl Config {
    /// Loads the layers. `file` is `--config`; without it `hookauth.toml` is read if present.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: Overrides,
    ) -> Result<Self, ConfigError> {
        let mut table = toml::Table::new();
        let default_file = Path::new("hookauth.toml");
        let file = file.or_else(|| default_file.exists().then_some(default_file));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            table = text
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::File {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
        }
        merge_env(&mut table, env)?;
        if let Some(bind) = overrides.bind {
            table.insert("bind".into(), bind.into());
        }
        if let Some(url) = overrides.database_url {
            table.insert("database_url".into(), url.into());
        }
        if overrides.hooks_dir.is_some() || overrides.lenient_hooks {
            let hooks = table
                .entry("hooks")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::Invalid("hooks must be a section".into()))?;
            if let Some(dir) = overrides.hooks_dir {
                hooks.insert("dir".into(), dir.display().to_string().into());
            }
            if overrides.lenient_hooks {
                hooks.insert("lenient".into(), true.into());
            }
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// Every value checked at once; all problems are reported together, one per line. Adding
    /// a key's check is one line here.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(key) = &self.secret_key
            && key.expose().len() < 32
        {
            return Err(ConfigError::SecretTooShort(key.expose().len()));
        }
        const MINUTES_PER_YEAR: u64 = 366 * 24 * 60;
        const HOUR_MS: u64 = 3_600_000;
        let mut c = Checks::default();
        c.rule(
            "bind",
            valid_bind(&self.bind),
            "must be HOST:PORT, e.g. 127.0.0.1:8000 or [::]:8000",
        );
        c.rule(
            "database_url",
            ["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| self.database_url.expose().starts_with(p)),
            "must start with sqlite: or postgres://",
        );
        c.rule(
            "mfa.issuer",
            !self.mfa.issuer.trim().is_empty() && !self.mfa.issuer.contains(':'),
            "must be a non-empty name without ':' (authenticator apps split on it)",
        );
        c.range("mfa.pending_seconds", self.mfa.pending_seconds, 30, 3600);
        let cookie_sets = std::iter::once(("cookies".to_owned(), &self.cookies)).chain(
            self.tenants.iter().filter_map(|(name, t)| {
                Some((format!("tenants.{name}.cookies"), t.cookies.as_ref()?))
            }),
        );
        for (key, cookies) in cookie_sets {
            c.rule(
                &format!("{key}.same_site"),
                cookies.same_site != SameSite::None || cookies.secure,
                "\"none\" needs secure = true (browsers drop a SameSite=None cookie without Secure)",
            );
            c.rule(
                &format!("{key}.domain"),
                cookies.domain.as_deref().is_none_or(|d| {
                    !d.is_empty()
                        && d.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                }),
                "must be a host name such as example.com",
            );
        }
        c.rule(
            "metrics.bind",
            self.metrics.bind.as_deref().is_none_or(valid_bind),
            "must be HOST:PORT, e.g. 127.0.0.1:9464",
        );
        c.rule(
            "operator_token",
            self.operator_token
                .as_ref()
                .is_none_or(|t| t.expose().len() >= 32),
            "must be at least 32 bytes; generate one with `openssl rand -hex 32`",
        );
        c.range(
            "hooks.max_concurrent",
            self.hooks.max_concurrent,
            1,
            1_000_000,
        );
        let th = &self.tenant_hooks;
        c.range("tenant_hooks.max_hooks", th.max_hooks, 0, 10_000);
        c.range(
            "tenant_hooks.max_component_mib",
            th.max_component_mib,
            1,
            1024,
        );
        c.range("tenant_hooks.fuel", th.fuel, 1, 1 << 50);
        c.range("tenant_hooks.memory_mib", th.memory_mib, 1, 4096);
        c.range("tenant_hooks.timeout_ms", th.timeout_ms, 1, HOUR_MS);
        c.range(
            "tenant_hooks.compile_concurrency",
            th.compile_concurrency,
            1,
            1024,
        );
        for host in &th.allowed_hosts {
            if let Err(e) = crate::hooks::outbound::HostPattern::parse(host) {
                c.problem("tenant_hooks.allowed_hosts", format!("{host:?}: {e}"));
            }
        }
        let db = &self.database;
        c.range("database.max_connections", db.max_connections, 1, 10_000);
        c.rule(
            "database.sqlite_synchronous",
            ["normal", "full"].contains(&db.sqlite_synchronous.as_str()),
            "must be \"normal\" or \"full\"",
        );
        let jwt = &self.jwt;
        c.rule(
            "jwt.algorithm",
            ["HS256", "HS384", "HS512"].contains(&jwt.algorithm.as_str()),
            format!("must be HS256, HS384 or HS512, not {:?}", jwt.algorithm),
        );
        c.rule(
            "jwt.issuer",
            jwt.issuer.as_ref().is_none_or(|v| !v.is_empty()),
            "must not be empty",
        );
        c.rule(
            "jwt.audience",
            jwt.audience.as_ref().is_none_or(|v| !v.is_empty()),
            "must not be empty",
        );
        c.range(
            "jwt.access_token_minutes",
            jwt.access_token_minutes,
            1,
            MINUTES_PER_YEAR,
        );
        c.range("jwt.refresh_token_days", jwt.refresh_token_days, 1, 3_660);
        c.range("jwt.leeway_seconds", jwt.leeway_seconds, 0, 3_600);
        let pw = &self.password;
        c.range("password.min_length", pw.min_length, 1, 4_096);
        c.rule(
            "password.max_length",
            pw.max_length == 0 || (pw.max_length >= pw.min_length && pw.max_length <= 1 << 20),
            "must be 0 (no cap) or between password.min_length and 1048576",
        );
        c.range("password.argon2_parallelism", pw.argon2_parallelism, 1, 64);
        c.range("password.argon2_iterations", pw.argon2_iterations, 1, 100);
        c.range(
            "password.argon2_memory_kib",
            pw.argon2_memory_kib,
            (8 * pw.argon2_parallelism).max(8),
            4 << 20,
        );
        c.range(
            "tokens.email_verify_minutes",
            self.tokens.email_verify_minutes,
            1,
            MINUTES_PER_YEAR,
        );
        c.range(
            "tokens.password_reset_minutes",
            self.tokens.password_reset_minutes,
            1,
            MINUTES_PER_YEAR,
        );
        let sec = &self.security;
        c.range(
            "security.reauth_max_age_seconds",
            sec.reauth_max_age_seconds,
            0,
            366 * 86_400,
        );
        c.range(
            "security.max_body_bytes",
            sec.max_body_bytes,
            1024,
            64 << 20,
        );
        let lo = &self.lockout;
        c.range("lockout.max_attempts", lo.max_attempts, 1, 1_000_000);
        c.range(
            "lockout.duration_minutes",
            lo.duration_minutes,
            1,
            MINUTES_PER_YEAR,
        );
        let rl = &self.rate_limit;
        c.range("rate_limit.window_seconds", rl.window_seconds, 1, 86_400);
        c.rule(
            "rate_limit.trusted_proxy_header",
            rl.trusted_proxy_header
                .as_ref()
                .is_none_or(|h| http::HeaderName::from_bytes(h.as_bytes()).is_ok()),
            "must be a valid header name, e.g. X-Forwarded-For",
        );
        c.range(
            "rate_limit.trusted_proxy_count",
            rl.trusted_proxy_count,
            1,
            64,
        );
        // 0 would refuse every request of the bucket; `rate_limit.enabled = false` turns limits off.
        let l = &rl.limits;
        for (key, value) in [
            ("rate_limit.limits.login", l.login),
            ("rate_limit.limits.register", l.register),
            ("rate_limit.limits.refresh", l.refresh),
            ("rate_limit.limits.reauth", l.reauth),
            ("rate_limit.limits.verify_email", l.verify_email),
            ("rate_limit.limits.password_reset", l.password_reset),
        ] {
            c.range(key, value, 1, 1_000_000);
        }
        let d = &self.delivery;
        c.range("delivery.concurrency", d.concurrency, 0, 100_000);
        c.range(
            "delivery.tenant_concurrency",
            d.tenant_concurrency,
            0,
            100_000,
        );
        c.range("delivery.hook_concurrency", d.hook_concurrency, 0, 100_000);
        c.range("delivery.max_attempts", d.max_attempts, 1, 1_000);
        c.range(
            "delivery.backoff_initial_ms",
            d.backoff_initial_ms,
            1,
            24 * HOUR_MS,
        );
        c.range(
            "delivery.backoff_max_ms",
            d.backoff_max_ms,
            d.backoff_initial_ms.max(1),
            7 * 24 * HOUR_MS,
        );
        c.range("delivery.batch_size", d.batch_size, 1, 10_000);
        c.range("delivery.lease_ms", d.lease_ms, 300, HOUR_MS);
        c.range("delivery.poll_ms", d.poll_ms, 1, HOUR_MS);
        c.range(
            "delivery.breaker_failures",
            d.breaker_failures,
            0,
            1_000_000,
        );
        c.range(
            "delivery.breaker_pause_ms",
            d.breaker_pause_ms,
            1,
            24 * HOUR_MS,
        );
        let s = &self.server;
        c.range(
            "server.header_read_timeout_ms",
            s.header_read_timeout_ms,
            10,
            HOUR_MS,
        );
        c.range(
            "server.body_read_timeout_ms",
            s.body_read_timeout_ms,
            10,
            HOUR_MS,
        );
        c.range("server.idle_timeout_ms", s.idle_timeout_ms, 10, HOUR_MS);
        c.range("server.max_connections", s.max_connections, 1, 1_000_000);
        c.range(
            "server.max_connections_per_ip",
            s.max_connections_per_ip,
            1,
            s.max_connections,
        );
        c.range("server.max_header_bytes", s.max_header_bytes, 1024, 1 << 20);
        c.range("server.shutdown_grace_ms", s.shutdown_grace_ms, 0, HOUR_MS);
        c.range(
            "tokens.email_verify_emails_per_hour",
            self.tokens.email_verify_emails_per_hour,
            1,
            1_000_000,
        );
        c.range(
            "tokens.password_reset_emails_per_hour",
            self.tokens.password_reset_emails_per_hour,
            1,
            1_000_000,
        );
        // These checks name their keys themselves.
        if let Err(problems) = self.hooks.sandbox_caps().check() {
            for problem in problems {
                c.named(problem);
            }
        }
        for check in [self.hooks.check(), self.tenant_hooks.check_compile()] {
            match check {
                Ok(()) => {}
                Err(ConfigError::Invalid(problem)) => c.named(problem),
                Err(other) => c.named(other),
            }
        }
        for problem in crate::oauth::check_config("oauth", &self.oauth) {
            c.named(problem);
        }
        for (name, tenant) in &self.tenants {
            c.rule(
                &format!("tenants.{name}"),
                crate::domain::TenantId::parse(name).is_ok(),
                "is not a valid tenant name (1-63 of a-z, 0-9 and -)",
            );
            for problem in
                crate::oauth::check_config(&format!("tenants.{name}.oauth"), &tenant.oauth)
            {
                c.named(problem);
            }
        }
        for name in self.profile_fields.keys() {
            c.rule(
                &format!("profile_fields.{name}"),
                !RESERVED_USER_FIELDS.contains(&name.as_str()),
                "clashes with a built-in user field",
            );
        }
        c.finish()
    }

    pub fn password_policy(&self) -> PasswordPolicy {
        let p = &self.password;
        PasswordPolicy {
            min_length: p.min_length,
            max_length: p.max_length,
            require_lowercase: p.require_lowercase,
            require_uppercase: p.require_uppercase,
            require_digit: p.require_digit,
            require_symbol: p.require_symbol,
            forbid_email_local_part: p.forbid_email_local_part,
            forbid_common: p.forbid_common,
        }
    }

    pub fn profile_schema(&self) -> ProfileSchema {
        ProfileSchema::new(self.profile_fields.clone())
    }
}

/// Collects every configuration problem, so one start reports them all.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn problem(&mut self, key: &str, message: impl fmt::Display) {
        self.0.push(format!("{key} {message}"));
    }

    /// A problem whose message already names its key.
    fn named(&mut self, message: impl fmt::Display) {
        self.0.push(message.to_string());
    }

    fn rule(&mut self, key: &str, ok: bool, message: impl fmt::Display) {
        if !ok {
            self.problem(key, message);
        }
    }

    fn range<T: PartialOrd + fmt::Display>(&mut self, key: &str, value: T, min: T, max: T) {
        if value < min || value > max {
            self.problem(
                key,
                format!("must be between {min} and {max} (got {value})"),
            );
        }
    }

    fn finish(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(self.0.join("; ")))
        }
    }
}

/// `HOST:PORT`, `IPv4:PORT` or `[IPv6]:PORT`.
fn valid_bind(bind: &str) -> bool {
    if bind.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    match bind.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().is_ok()
                && !host.is_empty()
                && host
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-')
        }
        None => false,
    }
}

/// User-object keys a custom field may not shadow; also the fields PATCH /me silently drops.
pub const RESERVED_USER_FIELDS: &[&str] = &[
    "id",
    "email",
    "hashed_password",
    "is_active",
    "is_verified",
    "is_superuser",
    "roles",
    "password",
    "created_at",
    "refresh_tokens",
];

/// `HOOKAUTH_JWT__ISSUER=x` sets `jwt.issuer`. Values are read as TOML scalars when they parse
/// as one (numbers, booleans), else as strings.
fn merge_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in env {
        let Some(key) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if ENV_NOT_CONFIG.contains(&name.as_str()) || key.starts_with("TEST_") {
            continue;
        }
        let path: Vec<String> = key.split("__").map(str::to_lowercase).collect();
        let value = parse_env_value(&value);
        let mut node = &mut *table;
        for part in &path[..path.len() - 1] {
            let entry = node
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry
                .as_table_mut()
                .ok_or_else(|| ConfigError::Invalid(format!("{name}: {part} is not a section")))?;
        }
        node.insert(path[path.len() - 1].clone(), value);
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "bind = \"0.0.0.0:1\"\ndatabase_url = \"sqlite://file.db\"\n[jwt]\nleeway_seconds = 5\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            env(&[
                ("HOOKAUTH_DATABASE_URL", "sqlite://env.db"),
                ("HOOKAUTH_JWT__LEEWAY_SECONDS", "7"),
                ("HOOKAUTH_JWT__ISSUER", "me"),
                ("OTHER", "x"),
            ]),
            Overrides {
                bind: Some("127.0.0.1:9".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.bind, "127.0.0.1:9");
        assert_eq!(config.database_url.expose(), "sqlite://env.db");
        assert_eq!(config.jwt.leeway_seconds, 7);
        assert_eq!(config.jwt.issuer.as_deref(), Some("me"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::load(None, env(&[("HOOKAUTH_BINDD", "x")]), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bindd"), "{err}");
        let err = Config::load(
            None,
            env(&[("HOOKAUTH_JWT__ISUER", "x")]),
            Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("isuer"), "{err}");
    }

    #[test]
    fn short_secret_keys_are_refused() {
        let err = Config::load(
            None,
            env(&[("HOOKAUTH_SECRET_KEY", "short")]),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::SecretTooShort(5)));
    }

    #[test]
    fn numeric_looking_secrets_stay_strings() {
        let key = "1".repeat(40);
        let config = Config::load(
            None,
            env(&[("HOOKAUTH_SECRET_KEY", key.as_str())]),
            Overrides::default(),
        );
        // A 40-digit number overflows TOML integers, so it stays a string.
        assert_eq!(config.unwrap().secret_key.unwrap().expose(), key);
    }

    #[test]
    fn profile_fields_cannot_shadow_built_ins() {
        let err = Config::load(
            None,
            env(&[("HOOKAUTH_PROFILE_FIELDS__EMAIL", "string")]),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("email"));
    }
}
