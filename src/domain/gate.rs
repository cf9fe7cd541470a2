//! Gate decisions: what a flow asks hooks before it commits, and what they may answer.
//! Hook-independent: the flows ask through [`crate::flows::GateSource`], the Wasm host
//! answers (WIT `hookauth:hooks/gate@0.2.0`).

use serde::{Deserialize, Serialize};

use super::{RequestContext, TenantId, UserSnapshot};

/// Where a flow asks its gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionPoint {
    BeforeRegister,
    BeforeLogin,
    CheckPassword,
    TokenClaims,
}

impl DecisionPoint {
    pub const ALL: [DecisionPoint; 4] = [
        DecisionPoint::BeforeRegister,
        DecisionPoint::BeforeLogin,
        DecisionPoint::CheckPassword,
        DecisionPoint::TokenClaims,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DecisionPoint::BeforeRegister => "before_register",
            DecisionPoint::BeforeLogin => "before_login",
            DecisionPoint::CheckPassword => "check_password",
            DecisionPoint::TokenClaims => "token_claims",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// Why a password is being set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordReason {
    Register,
    Change,
    Reset,
}

/// How an access token is being obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    Login,
    Refresh,
    Oauth,
}

/// Whose password is checked: the user when one exists, the email being registered otherwise.
#[derive(Clone, Debug)]
pub enum PasswordSubject {
    User(UserSnapshot),
    Email(String),
}

/// What a gate is asked.
#[derive(Clone, Debug)]
pub enum GateQuestion {
    BeforeRegister {
        /// Normalised.
        email: String,
        /// Sent by the client, with earlier gates' changes applied.
        profile: super::Profile,
    },
    BeforeLogin {
        user: UserSnapshot,
    },
    CheckPassword {
        subject: PasswordSubject,
        password: super::Password,
        why: PasswordReason,
    },
    TokenClaims {
        user: UserSnapshot,
        grant: Grant,
    },
}

impl GateQuestion {
    pub fn point(&self) -> DecisionPoint {
        match self {
            GateQuestion::BeforeRegister { .. } => DecisionPoint::BeforeRegister,
            GateQuestion::BeforeLogin { .. } => DecisionPoint::BeforeLogin,
            GateQuestion::CheckPassword { .. } => DecisionPoint::CheckPassword,
            GateQuestion::TokenClaims { .. } => DecisionPoint::TokenClaims,
        }
    }

    /// Who the decision is about, for the audit: a user id, or the email being registered.
    pub fn subject(&self) -> String {
        match self {
            GateQuestion::BeforeRegister { email, .. } => email.clone(),
            GateQuestion::BeforeLogin { user } | GateQuestion::TokenClaims { user, .. } => {
                user.id.clone()
            }
            GateQuestion::CheckPassword { subject, .. } => match subject {
                PasswordSubject::User(u) => u.id.clone(),
                PasswordSubject::Email(e) => e.clone(),
            },
        }
    }
}

/// Where the request being decided came from.
#[derive(Clone, Debug)]
pub struct GateContext {
    pub tenant: TenantId,
    /// Unique per decision (one gate's answer); the audit record carries it.
    pub decision_id: String,
    pub request: RequestContext,
}

/// A refusal, as the gate gave it (the flows sanitise it before a client sees it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub code: Option<String>,
    pub message: String,
}

/// What a before-register gate may change in the account about to be created.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegisterChanges {
    /// (name, value as JSON text).
    pub profile: Vec<(String, String)>,
    /// Names of existing roles.
    pub roles: Vec<String>,
}

/// A gate's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum GateAnswer {
    Allow,
    Deny(Denial),
    AllowWithChanges(RegisterChanges),
    /// token-claims: (name, value as JSON text).
    Claims(Vec<(String, String)>),
}

/// What a failing gate means (hooks.toml `on_error`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail closed: a trap, timeout or bad answer denies.
    #[default]
    Deny,
    /// Fail open: the failing gate is skipped.
    Allow,
}

impl OnError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Deny => "deny",
            OnError::Allow => "allow",
        }
    }
}

/// Why a gate gave no usable answer: a short stable label (`timeout`, `out_of_fuel`,
/// `bad_answer`, ...) and a one-line reason for the log and the audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateFailure {
    pub label: &'static str,
    pub reason: String,
}

/// Characters that may not reach a log line or a client as they are: controls (C0, DEL, C1),
/// the Unicode line separators and the bidirectional marks and overrides, with which text can
/// forge a log line or rewrite what a terminal shows.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}'
            | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
