//! The use cases, one per file: plain async functions over a [`Flows`] context. They know
//! nothing of HTTP; they decide, call the store and the crypto, and return a [`FlowError`].

mod admin;
mod attempts;
mod authenticate;
mod change_password;
mod error;
mod gates;
mod import;
mod limits;
mod login;
mod logout;
mod mfa;
mod monitor;
mod oauth;
mod password_reset;
mod profile;
mod refresh;
mod register;
mod sessions;
mod tenants;
mod tokens;
mod verify_email;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;

pub use admin::{
    assign_permission, assign_role, ensure_superuser, remove_permission, remove_role,
    role_permissions,
};
pub use authenticate::{Session, authenticate};
pub use change_password::change_password;
pub use error::FlowError;
pub use gates::{
    DEFAULT_DENY_MESSAGE, FAILED_HOOK_CODE, Gate, GateSettings, GateSource, MAX_DENY_MESSAGE_CHARS,
    RESERVED_CLAIMS,
};
pub use import::{ImportRecord, ImportReport, ImportSource, ImportTotp, ReportEntry, import_users};
pub use limits::{count_request, shares_rate_limits};
pub use login::{LoginInput, LoginOutcome, login};
pub use logout::{LogoutInput, logout};
pub use mfa::{
    MfaEnrolment, MfaSettings, MfaStatus, mfa_confirm, mfa_disable, mfa_enroll, mfa_status,
    mfa_verify,
};
pub use monitor::{TenantMonitor, render_metrics, tenant_monitor};
pub use oauth::{
    AuthorizeStart, CallbackInput, oauth_accounts, oauth_authorize, oauth_callback,
    oauth_link_authorize, oauth_link_callback, oauth_providers, oauth_unlink,
};
pub use password_reset::{confirm_password_reset, request_password_reset};
pub use profile::{ProfileUpdateError, delete_account, update_profile};
pub use refresh::refresh;
pub use register::{RegisterInput, RegisterOutcome, create_superuser, register};
pub use sessions::{list_sessions, revoke_other_sessions, revoke_session};
pub use tenants::tenant_exists;
pub use tokens::TokenPair;
pub use verify_email::{confirm_email, request_email_verification};

use crate::crypto::{JwtKeys, PasswordHasher, SecretBox, Verification};
use crate::domain::{Password, PasswordPolicy, ProfileSchema, UnixMillis};
use crate::store::{EmailLimit, LockoutPolicy, Store};

/// Password-reset requests being worked on off the response path at once; more wait for a
/// place (whether or not their address exists, so the wait tells nothing).
const RESET_JOBS: u32 = 64;

/// Where "now" comes from, so expiry and lockout can be tested without sleeping.
#[derive(Clone)]
pub enum Clock {
    System,
    /// Tests: the system clock shifted by an offset in milliseconds.
    Shifted(Arc<std::sync::atomic::AtomicI64>),
}

impl Clock {
    pub fn now_millis(&self) -> UnixMillis {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as i64;
        match self {
            Clock::System => system,
            Clock::Shifted(offset) => system + offset.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    pub fn now_secs(&self) -> i64 {
        self.now_millis() / 1000
    }
}

/// Settings the flows read, resolved from the configuration once.
#[derive(Clone, Debug)]
pub struct FlowSettings {
    pub access_ttl_secs: i64,
    pub refresh_ttl_millis: i64,
    pub leeway_secs: i64,
    pub refresh_rotation: bool,
    pub email_verify_ttl_millis: i64,
    pub password_reset_ttl_millis: i64,
    pub reauth_max_age_secs: i64,
    pub prevent_registration_enumeration: bool,
    pub lockout: Option<LockoutPolicy>,
    /// Verification emails per account per window.
    pub verify_email_limit: EmailLimit,
    /// Password-reset emails per account per window.
    pub reset_email_limit: EmailLimit,
    pub password_policy: PasswordPolicy,
    pub profile_schema: ProfileSchema,
    pub gates: GateSettings,
    pub mfa: MfaSettings,
}

/// Everything a flow needs. Built once at start and shared.
pub struct Flows {
    pub store: Store,
    pub jwt: JwtKeys,
    pub clock: Clock,
    pub settings: FlowSettings,
    hasher: Arc<PasswordHasher>,
    /// Bounds concurrent argon2 work: each hash holds its memory cost (tens of MiB) for its
    /// whole run, so a login flood must queue rather than exhaust memory.
    hashing: Arc<Semaphore>,
    /// Password-reset requests run off the response path (see `password_reset`); a permit
    /// each, so they are bounded and can be waited for.
    reset_jobs: Arc<Semaphore>,
    /// Verifications against stored hashes since start (the lockout bounds them).
    password_checks: Arc<std::sync::atomic::AtomicU64>,
    /// Gate hooks (once loaded) and the audit of their decisions.
    gates: gates::Gates,
    /// Every tenant's OAuth providers.
    oauth: Arc<crate::oauth::OauthDirectory>,
    /// Seals TOTP secrets at rest (a key derived from `secret_key`).
    sealer: Arc<SecretBox>,
    /// The server's counters (`/metrics`): the HTTP layer, the hooks and the dispatcher count
    /// into this one too.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Flows {
    pub fn new(
        store: Store,
        jwt: JwtKeys,
        hasher: PasswordHasher,
        clock: Clock,
        settings: FlowSettings,
        oauth: crate::oauth::OauthDirectory,
        sealer: SecretBox,
    ) -> Self {
        let parallel_hashes = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        Self {
            gates: gates::Gates::new(settings.gates.clone()),
            store,
            jwt,
            clock,
            settings,
            hasher: Arc::new(hasher),
            hashing: Arc::new(Semaphore::new(parallel_hashes)),
            reset_jobs: Arc::new(Semaphore::new(RESET_JOBS as usize)),
            password_checks: Arc::default(),
            oauth: Arc::new(oauth),
            sealer: Arc::new(sealer),
            metrics: Arc::default(),
        }
    }

    /// How many passwords were checked against a stored hash since start (login,
    /// change-password, DELETE /me); dummy verifications for unknown or locked accounts are
    /// not counted. The lockout bounds how fast this grows for one account.
    pub fn password_checks(&self) -> u64 {
        self.password_checks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until every password-reset request accepted so far has been worked off (its
    /// token and email event committed, or its refusal logged). For a graceful stop, and for
    /// tests that count what the requests produced.
    pub async fn settle_background_work(&self) {
        if let Ok(all) = self.reset_jobs.acquire_many(RESET_JOBS).await {
            drop(all);
        }
    }

    /// Runs argon2 on the blocking pool, never on the async workers.
    async fn hash_password(&self, password: Password) -> Result<String, FlowError> {
        self.on_hashing_pool(move |h| h.hash(&password)).await
    }

    async fn verify_password(
        &self,
        password: Password,
        stored: String,
    ) -> Result<Verification, FlowError> {
        self.password_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.on_hashing_pool(move |h| h.verify(&password, &stored))
            .await
    }

    /// Same cost as a real verification; for users that do not exist.
    async fn verify_dummy(&self, password: Password) -> Result<(), FlowError> {
        self.on_hashing_pool(move |h| h.verify_dummy(&password))
            .await
    }

    async fn on_hashing_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, FlowError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| FlowError::Internal("hashing pool closed".into()))?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || work(&hasher))
            .await
            .map_err(|e| FlowError::Internal(format!("hashing task failed: {e}")))
    }

    /// Blacklist entries for a session family must outlive every access token it issued.
    fn family_revoked_until(&self, now: UnixMillis) -> UnixMillis {
        now + (self.settings.access_ttl_secs + self.settings.leeway_secs) * 1000
    }

    fn session_cutoff(&self, now: UnixMillis) -> crate::store::SessionCutoff {
        crate::store::SessionCutoff {
            access_window_start: now
                - (self.settings.access_ttl_secs + self.settings.leeway_secs) * 1000,
            revoked_until: self.family_revoked_until(now),
        }
    }
}
