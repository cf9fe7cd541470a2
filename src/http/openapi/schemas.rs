//! Documentation-only types: the shapes the handlers accept and answer, for the OpenAPI
//! document. Handlers parse bodies by hand (`body.rs`) and build answers from domain types, so
//! these are never constructed; each says where the real shape comes from.
//!
//! Conventions: response objects are closed (`deny_unknown_fields` → `additionalProperties:
//! false`), except the user, whose configured profile fields are added beside the fixed ones.
//! Request objects whose handler ignores unknown keys stay open. A field the server always
//! writes, possibly as `null`, is `Option<T>` with `required = true`; a field it leaves out when
//! absent is a plain type with `required = false`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Every error answer (`ApiError`): a message or a list of problems, and a stable `code`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub detail: ErrorDetail,
    /// Stable, machine-readable: `invalid_credentials`, `validation_error`, `rate_limited`,
    /// `not_found`, `unknown_tenant`, `denied_by_hook`, ...
    pub code: String,
    /// Only with `code = denied_by_hook`: the gate's own code, when it gave one.
    #[schema(required = false)]
    pub hook_code: String,
    /// Only with `code = password_policy`: every rule the password breaks.
    #[schema(required = false)]
    pub violations: Vec<PolicyViolation>,
}

/// One password rule a new password breaks.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyViolation {
    /// `password_too_short`, `password_too_long`, `password_needs_lowercase`,
    /// `password_needs_uppercase`, `password_needs_digit`, `password_needs_symbol`,
    /// `password_contains_email`, `password_too_common`.
    pub code: String,
    pub message: String,
}

/// A message, or (`validation_error`) every problem found in the request, pydantic-style.
#[derive(ToSchema, Deserialize)]
#[serde(untagged)]
pub enum ErrorDetail {
    Message(String),
    Problems(Vec<FieldProblem>),
}

/// One problem in a request (`FieldProblem`).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldProblem {
    /// `missing`, `string_type`, `json_invalid`, `value_error`, `uuid_parsing`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: `["body", "email"]`, `["query", "redirect_uri"]`, `["body", 12]` (a JSON syntax
    /// error's offset), or the field alone for a re-validated profile.
    pub loc: Vec<LocItem>,
    pub msg: String,
    /// The offending input (any JSON value, possibly `null`).
    pub input: Value,
}

#[derive(ToSchema, Deserialize)]
#[serde(untagged)]
pub enum LocItem {
    Name(String),
    Offset(u64),
}

/// A confirmation: `{"detail": "..."}`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub detail: String,
}

/// The user object (`User::snapshot()`): the fixed fields, then one property per configured
/// profile field (`profile_fields`), each a string, integer, number or boolean.
#[derive(ToSchema, Deserialize)]
#[schema(as = User)]
pub struct UserOut {
    #[schema(format = "uuid")]
    pub id: String,
    pub email: String,
    pub is_active: bool,
    pub is_verified: bool,
    pub is_superuser: bool,
    pub roles: Vec<String>,
}

/// `flows::TokenPair`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPair {
    pub access_token: String,
    /// `null` when the tenant's cookie transport carries it (`[cookies]`).
    pub refresh_token: Option<String>,
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Bearer,
}

/// A sign-in's answer (password or OAuth): the token pair and the user.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginResponse {
    pub access_token: String,
    /// `null` when the tenant's cookie transport carries it (`[cookies]`).
    pub refresh_token: Option<String>,
    pub token_type: TokenType,
    pub expires_in: i64,
    pub user: UserOut,
}

/// `POST /register`: the credentials, plus any configured profile field. Other keys
/// (`is_superuser`, `roles`, ...) are ignored.
#[derive(ToSchema, Deserialize)]
pub struct RegisterRequest {
    #[schema(format = "email")]
    pub email: String,
    pub password: String,
}

#[derive(ToSchema, Deserialize)]
pub struct LoginRequest {
    /// Not validated as an address: any string.
    pub email: String,
    pub password: String,
}

/// The optional body of `/refresh` and `/logout`; a missing body or token is allowed (and
/// answered 401 when nothing else identifies the session).
#[derive(ToSchema, Deserialize)]
pub struct RefreshTokenRequest {
    pub refresh_token: Option<String>,
}

/// `PATCH /me`: configured profile fields to change. Protected fields (`id`, `email`,
/// `is_active`, `roles`, ...) are dropped; any other key is refused (422 `unknown_fields`).
#[derive(ToSchema, Deserialize)]
pub struct UpdateMeRequest {}

/// `DELETE /me`: optional; without a password the session must be recent.
#[derive(ToSchema, Deserialize)]
pub struct DeleteMeRequest {
    pub current_password: Option<String>,
}

#[derive(ToSchema, Deserialize)]
pub struct ChangePasswordRequest {
    pub new_password: String,
    /// Required (non-empty) when the account has a password.
    pub current_password: Option<String>,
}

#[derive(ToSchema, Deserialize)]
pub struct TokenRequest {
    pub token: String,
}

#[derive(ToSchema, Deserialize)]
pub struct EmailRequest {
    #[schema(format = "email")]
    pub email: String,
}

#[derive(ToSchema, Deserialize)]
pub struct ResetConfirmRequest {
    pub token: String,
    pub new_password: String,
}

#[derive(ToSchema, Deserialize)]
pub struct UserRoleRequest {
    #[schema(format = "uuid")]
    pub user_id: String,
    #[schema(pattern = r"^[A-Za-z0-9_.:-]{1,64}$")]
    pub role: String,
}

#[derive(ToSchema, Deserialize)]
pub struct RolePermissionRequest {
    #[schema(pattern = r"^[A-Za-z0-9_.:-]{1,64}$")]
    pub role: String,
    #[schema(pattern = r"^[A-Za-z0-9_.:-]{1,64}$")]
    pub permission: String,
}

/// One sign-in session of the caller (a refresh-token family).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionInfo {
    pub family_id: String,
    #[schema(required = true)]
    pub ip_address: Option<String>,
    #[schema(required = true)]
    pub user_agent: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The session of the token that asked.
    pub current: bool,
}

#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OauthProviderNames {
    pub providers: Vec<String>,
}

/// What the provider sent back to the redirect URI, and the binding from authorize.
#[derive(ToSchema, Deserialize)]
pub struct OauthCallbackRequest {
    #[schema(min_length = 1, max_length = 2048)]
    pub code: String,
    #[schema(min_length = 1, max_length = 4096)]
    pub state: String,
    #[schema(min_length = 1, max_length = 512)]
    pub binding: String,
}

/// `domain::OauthAccount`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OauthAccount {
    pub provider: String,
    pub provider_user_id: String,
    #[schema(required = true)]
    pub provider_email: Option<String>,
}

/// `hooks::registry::HookInfo`: fields a source does not have are left out.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookInfo {
    pub name: String,
    pub source: HookSource,
    /// Event kinds the hook receives.
    pub events: Vec<String>,
    #[schema(required = false)]
    pub sha256: String,
    #[schema(required = false)]
    pub order: i64,
    #[schema(required = false)]
    pub enabled: bool,
    #[schema(required = false)]
    pub limits: LimitsInfo,
    #[schema(required = false)]
    pub allowed_hosts: Vec<String>,
    #[schema(required = false)]
    pub config: BTreeMap<String, String>,
    /// Secret names the hook reads → the tenant secrets they come from (never values).
    #[schema(required = false)]
    pub secrets: BTreeMap<String, String>,
    /// Unix milliseconds.
    #[schema(required = false)]
    pub updated_at: i64,
    #[schema(required = false)]
    pub gate: GateInfo,
}

/// A deploy's answer: the hook as listed, and what the tenant still lacks.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployedHook {
    pub name: String,
    pub source: HookSource,
    pub events: Vec<String>,
    #[schema(required = false)]
    pub sha256: String,
    #[schema(required = false)]
    pub order: i64,
    #[schema(required = false)]
    pub enabled: bool,
    #[schema(required = false)]
    pub limits: LimitsInfo,
    #[schema(required = false)]
    pub allowed_hosts: Vec<String>,
    #[schema(required = false)]
    pub config: BTreeMap<String, String>,
    #[schema(required = false)]
    pub secrets: BTreeMap<String, String>,
    #[schema(required = false)]
    pub updated_at: i64,
    #[schema(required = false)]
    pub gate: GateInfo,
    pub warnings: Vec<String>,
}

#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookSource {
    Platform,
    File,
    Api,
}

#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsInfo {
    #[schema(minimum = 0)]
    pub fuel: u64,
    #[schema(minimum = 0)]
    pub memory_mib: u64,
    #[schema(minimum = 0)]
    pub timeout_ms: u64,
}

/// A gate's decision points, budget and `on_error`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateInfo {
    pub points: Vec<String>,
    #[schema(minimum = 0)]
    pub fuel: u64,
    #[schema(minimum = 0)]
    pub timeout_ms: u64,
    pub on_error: String,
}

/// `PUT {T}/hooks/{name}` (`multipart/form-data`).
#[derive(ToSchema, Deserialize)]
pub struct HookDeployForm {
    /// The compiled component (`.wasm`).
    #[schema(value_type = String, format = Binary)]
    pub component: Vec<u8>,
    /// The hook's manifest (JSON): order, config, secrets, allowed hosts, limits.
    #[schema(required = false)]
    pub manifest: String,
}

/// `PATCH {T}/hooks/{name}` (`hooks_admin::HookPatch`): each field present replaces the
/// current value; unknown keys are refused.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookPatch {
    pub enabled: Option<bool>,
    pub order: Option<i32>,
    pub config: Option<BTreeMap<String, String>>,
    pub limits: Option<LimitsPatch>,
}

#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    #[schema(minimum = 0)]
    pub fuel: Option<u64>,
    #[schema(minimum = 0)]
    pub memory_mib: Option<u32>,
    #[schema(minimum = 0)]
    pub timeout_ms: Option<u64>,
}

/// A tenant hook secret's name (values never leave the server).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretName {
    pub key: String,
    /// Unix milliseconds.
    pub updated_at: i64,
}

#[derive(ToSchema, Deserialize)]
pub struct SecretValue {
    /// 1 to 8192 bytes.
    pub value: String,
}

#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKey {
    pub key: String,
}

/// `hooks_admin::TenantFailure`: one undelivered event, only the tenant's own hooks named.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFailure {
    pub id: String,
    pub kind: String,
    pub status: FailureStatus,
    pub attempts: i64,
    pub failed_hooks: Vec<String>,
    pub failures: Vec<HookFailure>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureStatus {
    Failed,
    NoHandler,
}

#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookFailure {
    pub hook: String,
    pub attempts: i64,
    #[schema(required = true)]
    pub last_error: Option<String>,
}

/// `store::GateDecisionRecord`: one gate's answer (or failure) to one question.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateDecision {
    pub id: String,
    pub tenant: String,
    pub hook: String,
    pub point: String,
    /// `allow`, `deny`, `allow_with_changes`, `claims`, `failed_deny` or `failed_allow`.
    pub decision: String,
    #[schema(required = true)]
    pub hook_code: Option<String>,
    #[schema(required = true)]
    pub message: Option<String>,
    #[schema(required = true)]
    pub failure: Option<String>,
    /// A user id, or the email being registered.
    pub subject: String,
    pub request_id: String,
    pub duration_us: i64,
    /// Unix milliseconds.
    pub decided_at: i64,
}

/// `hooks_admin::OauthProviderView`: a provider without its secret.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OauthProviderView {
    pub name: String,
    pub source: ProviderSource,
    pub kind: ProviderKind,
    pub client_id: String,
    #[schema(required = true)]
    pub scopes: Option<Vec<String>>,
    #[schema(required = true)]
    pub issuer: Option<String>,
    #[schema(required = true)]
    pub authorize_url: Option<String>,
    #[schema(required = true)]
    pub token_url: Option<String>,
    #[schema(required = true)]
    pub userinfo_url: Option<String>,
    pub redirect_uris: Vec<String>,
    /// Unix milliseconds; `null` for a provider of the server's file.
    #[schema(required = true)]
    pub updated_at: Option<i64>,
}

#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderSource {
    Config,
    Api,
}

/// `oauth::ProviderKind`.
#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Google,
    Github,
    Gitlab,
    Discord,
    Oidc,
    Oauth2,
}

/// `PUT {T}/oauth-providers/{name}`: the keys of `[oauth.providers.NAME]`
/// (`config::OauthProviderConfig`); unknown keys are refused.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OauthProviderPut {
    pub kind: ProviderKind,
    pub client_id: String,
    /// Required for a new provider; left out, a replaced provider keeps its secret.
    #[schema(required = false)]
    pub client_secret: String,
    pub scopes: Option<Vec<String>>,
    pub issuer: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    #[schema(required = false)]
    pub redirect_uris: Vec<String>,
}

/// `hooks_admin::TenantInfo`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantInfo {
    pub id: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(ToSchema, Deserialize)]
pub struct TenantCreate {
    /// 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'.
    pub id: String,
}

/// `GET /readyz`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    pub ready: bool,
    /// The names of the failing checks.
    pub not_ready: Vec<String>,
    pub checks: ReadinessChecks,
}

#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadinessChecks {
    pub database: bool,
    pub migrations: bool,
    pub hooks: bool,
}

/// `/login`'s answer for an account with a second factor (202).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaRequired {
    /// Always `true`.
    pub mfa_required: bool,
    /// Short-lived and single-use: buys only the right to submit a code at `/mfa/verify`.
    pub mfa_token: String,
}

/// `POST /mfa/enroll`: optional; without a password the session must be recent.
#[derive(ToSchema, Deserialize)]
pub struct MfaEnrollRequest {
    pub current_password: Option<String>,
}

/// A TOTP code (six digits) or a recovery code.
#[derive(ToSchema, Deserialize)]
pub struct MfaCodeRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub code: String,
}

#[derive(ToSchema, Deserialize)]
pub struct MfaVerifyRequest {
    pub mfa_token: String,
    #[schema(min_length = 1, max_length = 64)]
    pub code: String,
}

/// Shown once: each works instead of a code, one time.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}
