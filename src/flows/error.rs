use crate::store::StoreError;

/// Why a flow refused. The HTTP layer maps each to a status, a `detail` and a stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// Every authentication failure looks the same from outside: wrong password, unknown
    /// user, locked, inactive, bad/expired/revoked/foreign token.
    #[error("could not validate credentials")]
    InvalidCredentials,
    #[error("not enough permissions")]
    Forbidden,
    /// change-password with a missing or wrong current password (400).
    #[error("current password is incorrect")]
    CurrentPasswordIncorrect,
    /// DELETE /me with a wrong current password (403).
    #[error("current password is incorrect")]
    CurrentPasswordRejected,
    #[error("re-authentication required")]
    ReauthenticationRequired,
    /// Every rule the new password breaks (422 `password_policy`, each with its own code).
    #[error("{}", crate::domain::describe_violations(.0))]
    PasswordPolicy(Vec<crate::domain::PolicyViolation>),
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("no valid fields to update")]
    NoValidFields,
    #[error("unknown fields: {0}")]
    UnknownFields(String),
    /// A gate hook denied (or failed with `on_error = "deny"`): 403 with its sanitised
    /// message and, if it gave one, its own code.
    #[error("denied by a hook: {message}")]
    DeniedByHook {
        message: String,
        hook_code: Option<String>,
    },
    /// `/oauth/{provider}/...` for a provider the tenant did not configure.
    #[error("OAuth provider '{0}' not configured")]
    OauthProviderNotFound(String),
    /// The `redirect_uri` is not on the provider's allow-list.
    #[error("invalid redirect URI")]
    InvalidRedirectUri,
    /// Any failure of an OAuth sign-in or link: the state, the binding, the provider's answer,
    /// the account. The reason is logged, never told.
    #[error("OAuth authentication failed")]
    OauthFailed,
    /// The provider account being linked belongs to another user.
    #[error("this {0} account is already linked to another user")]
    OauthAccountTaken(String),
    /// The user has another account of this provider linked.
    #[error("your account is already linked to a different {0} account")]
    OauthProviderAlreadyLinked(String),
    /// Unlinking would leave the account without a way to sign in.
    #[error("cannot remove the only sign-in method")]
    LastSignInMethod,
    /// `/mfa/enroll` or `/mfa/confirm` when the factor is already on (409).
    #[error("two-factor authentication is already enabled")]
    MfaAlreadyEnabled,
    /// `/mfa/confirm` or `DELETE /mfa` without a factor to act on (400).
    #[error("two-factor authentication is not set up")]
    MfaNotEnrolled,
    /// A wrong, replayed or rate-locked code on `/mfa/confirm` or `DELETE /mfa` (400).
    #[error("invalid code")]
    InvalidMfaCode,
    /// Hooks (and so the gates) are still loading: no decision may skip them.
    #[error("hooks are still loading")]
    NotReady,
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}
