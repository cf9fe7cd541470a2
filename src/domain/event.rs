//! The hook events of fastapi-fullauth (`seed/hooks.md`), as data. Flows create them; the store
//! writes them to the outbox in the same transaction as the change they report; the dispatcher
//! hands them to handlers (the Wasm hook host is one).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{OauthUserInfo, TenantId, UnixMillis, UserSnapshot};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    AfterRegister,
    AfterLogin,
    AfterLogout,
    AfterPasswordChange,
    AfterPasswordReset,
    AfterEmailVerify,
    SendVerificationEmail,
    SendPasswordResetEmail,
    AfterOauthLogin,
    AfterOauthRegister,
    AfterOauthLink,
    AfterOauthUnlink,
    AfterMfaEnabled,
    AfterMfaDisabled,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::AfterRegister,
        EventKind::AfterLogin,
        EventKind::AfterLogout,
        EventKind::AfterPasswordChange,
        EventKind::AfterPasswordReset,
        EventKind::AfterEmailVerify,
        EventKind::SendVerificationEmail,
        EventKind::SendPasswordResetEmail,
        EventKind::AfterOauthLogin,
        EventKind::AfterOauthRegister,
        EventKind::AfterOauthLink,
        EventKind::AfterOauthUnlink,
        EventKind::AfterMfaEnabled,
        EventKind::AfterMfaDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AfterRegister => "after_register",
            EventKind::AfterLogin => "after_login",
            EventKind::AfterLogout => "after_logout",
            EventKind::AfterPasswordChange => "after_password_change",
            EventKind::AfterPasswordReset => "after_password_reset",
            EventKind::AfterEmailVerify => "after_email_verify",
            EventKind::SendVerificationEmail => "send_verification_email",
            EventKind::SendPasswordResetEmail => "send_password_reset_email",
            EventKind::AfterOauthLogin => "after_oauth_login",
            EventKind::AfterOauthRegister => "after_oauth_register",
            EventKind::AfterOauthLink => "after_oauth_link",
            EventKind::AfterOauthUnlink => "after_oauth_unlink",
            EventKind::AfterMfaEnabled => "after_mfa_enabled",
            EventKind::AfterMfaDisabled => "after_mfa_disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Each event's arguments, named as in the seed's callback signatures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventPayload {
    AfterRegister {
        user: UserSnapshot,
    },
    AfterLogin {
        user: UserSnapshot,
    },
    AfterLogout {
        user_id: String,
    },
    /// `user` is the snapshot from before the change.
    AfterPasswordChange {
        user: UserSnapshot,
    },
    /// `user` is the snapshot from before the reset.
    AfterPasswordReset {
        user: UserSnapshot,
    },
    AfterEmailVerify {
        user: UserSnapshot,
    },
    SendVerificationEmail {
        email: String,
        token: String,
    },
    SendPasswordResetEmail {
        email: String,
        token: String,
    },
    AfterOauthLogin {
        user: UserSnapshot,
        provider: String,
        is_new_user: bool,
    },
    /// A new account created by an OAuth sign-in, with what the provider said.
    AfterOauthRegister {
        user: UserSnapshot,
        user_info: OauthUserInfo,
    },
    AfterOauthLink {
        user: UserSnapshot,
        provider: String,
    },
    AfterOauthUnlink {
        user: UserSnapshot,
        provider: String,
    },
    /// The second factor went live (its first code was confirmed).
    AfterMfaEnabled {
        user: UserSnapshot,
    },
    AfterMfaDisabled {
        user: UserSnapshot,
    },
}

impl EventPayload {
    pub fn kind(&self) -> EventKind {
        match self {
            EventPayload::AfterRegister { .. } => EventKind::AfterRegister,
            EventPayload::AfterLogin { .. } => EventKind::AfterLogin,
            EventPayload::AfterLogout { .. } => EventKind::AfterLogout,
            EventPayload::AfterPasswordChange { .. } => EventKind::AfterPasswordChange,
            EventPayload::AfterPasswordReset { .. } => EventKind::AfterPasswordReset,
            EventPayload::AfterEmailVerify { .. } => EventKind::AfterEmailVerify,
            EventPayload::SendVerificationEmail { .. } => EventKind::SendVerificationEmail,
            EventPayload::SendPasswordResetEmail { .. } => EventKind::SendPasswordResetEmail,
            EventPayload::AfterOauthLogin { .. } => EventKind::AfterOauthLogin,
            EventPayload::AfterOauthRegister { .. } => EventKind::AfterOauthRegister,
            EventPayload::AfterOauthLink { .. } => EventKind::AfterOauthLink,
            EventPayload::AfterOauthUnlink { .. } => EventKind::AfterOauthUnlink,
            EventPayload::AfterMfaEnabled { .. } => EventKind::AfterMfaEnabled,
            EventPayload::AfterMfaDisabled { .. } => EventKind::AfterMfaDisabled,
        }
    }

    /// Moves the one-time token (if any) out of the payload, so it can be stored apart from the
    /// payload and erased once the event is delivered.
    pub fn take_secret(&mut self) -> Option<String> {
        match self {
            EventPayload::SendVerificationEmail { token, .. }
            | EventPayload::SendPasswordResetEmail { token, .. } => Some(std::mem::take(token)),
            _ => None,
        }
    }

    pub fn restore_secret(&mut self, secret: String) {
        if let EventPayload::SendVerificationEmail { token, .. }
        | EventPayload::SendPasswordResetEmail { token, .. } = self
        {
            *token = secret;
        }
    }
}

/// Where the request that caused an event came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestContext {
    pub request_id: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A committed event, as the dispatcher hands it to handlers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique and stable across retries and replicas: handlers deduplicate on it.
    pub id: String,
    /// Commit order within the outbox.
    pub seq: i64,
    pub tenant: TenantId,
    pub occurred_at: UnixMillis,
    pub context: RequestContext,
    pub payload: EventPayload,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.payload.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("after_nothing"), None);
    }

    #[test]
    fn secrets_travel_apart_from_the_payload() {
        let mut payload = EventPayload::SendVerificationEmail {
            email: "a@example.com".into(),
            token: "s3cret".into(),
        };
        let secret = payload.take_secret().unwrap();
        assert!(!serde_json::to_string(&payload).unwrap().contains("s3cret"));
        payload.restore_secret(secret);
        assert_eq!(
            payload,
            EventPayload::SendVerificationEmail {
                email: "a@example.com".into(),
                token: "s3cret".into()
            }
        );
    }
}
