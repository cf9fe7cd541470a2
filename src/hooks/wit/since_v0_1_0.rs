//! Bindings for `hookauth:hooks@0.1.0` (`wit/v0.1.0`, frozen) and the conversion of domain
//! events into its types. A later WIT version gets its own `since_vX_Y_Z.rs`; this one stays,
//! so 0.1.0 hooks keep loading.

use crate::domain::{Event, EventKind, EventPayload, UserSnapshot};
use crate::hooks::state::HookState;

wasmtime::component::bindgen!({
    world: "hook",
    path: "wit/v0.1.0",
    exports: { default: async },
});

pub use hookauth::hooks::host::Level;
pub use hookauth::hooks::types::{
    EmailToken, Event as WitEvent, EventKind as WitEventKind, OauthLink, OauthLogin, OauthRegister,
    OauthUserInfo, Payload, Registration, RequestContext, User,
};

impl hookauth::hooks::types::Host for HookState {}

/// 0.1.0's host interface (0.2.0 uses the same): the work is `HookState`'s, shared by every
/// version that offers it.
impl hookauth::hooks::host::Host for HookState {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let level = match level {
            Level::Trace => tracing::Level::TRACE,
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warn => tracing::Level::WARN,
            Level::Error => tracing::Level::ERROR,
        };
        self.log_line(level, message, fields);
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.config_value(&key)
    }

    fn secret_get(&mut self, key: String) -> Option<String> {
        self.secret_value(&key)
    }
}

/// The domain kind a WIT kind is delivered as (every WIT kind has one since MFA landed; the
/// `Option` stays for kinds a later WIT may add before the server emits them).
pub fn domain_kind(kind: WitEventKind) -> Option<EventKind> {
    Some(match kind {
        WitEventKind::AfterRegister => EventKind::AfterRegister,
        WitEventKind::AfterLogin => EventKind::AfterLogin,
        WitEventKind::AfterLogout => EventKind::AfterLogout,
        WitEventKind::AfterPasswordChange => EventKind::AfterPasswordChange,
        WitEventKind::AfterPasswordReset => EventKind::AfterPasswordReset,
        WitEventKind::AfterEmailVerify => EventKind::AfterEmailVerify,
        WitEventKind::SendVerificationEmail => EventKind::SendVerificationEmail,
        WitEventKind::SendPasswordResetEmail => EventKind::SendPasswordResetEmail,
        WitEventKind::AfterOauthLogin => EventKind::AfterOauthLogin,
        WitEventKind::AfterOauthRegister => EventKind::AfterOauthRegister,
        WitEventKind::AfterOauthLink => EventKind::AfterOauthLink,
        WitEventKind::AfterOauthUnlink => EventKind::AfterOauthUnlink,
        WitEventKind::AfterMfaEnabled => EventKind::AfterMfaEnabled,
        WitEventKind::AfterMfaDisabled => EventKind::AfterMfaDisabled,
    })
}

pub(crate) fn user(u: &UserSnapshot) -> User {
    User {
        id: u.id.clone(),
        email: u.email.clone(),
        is_active: u.is_active,
        is_verified: u.is_verified,
        is_superuser: u.is_superuser,
        roles: u.roles.clone(),
        profile: u
            .profile
            .iter()
            .map(|(name, value)| (name.clone(), value.to_string()))
            .collect(),
    }
}

/// The WIT view of a committed event.
pub fn wit_event(event: &Event) -> WitEvent {
    let payload = match &event.payload {
        EventPayload::AfterRegister { user: u } => Payload::AfterRegister(user(u)),
        EventPayload::AfterLogin { user: u } => Payload::AfterLogin(user(u)),
        EventPayload::AfterLogout { user_id } => Payload::AfterLogout(user_id.clone()),
        EventPayload::AfterPasswordChange { user: u } => Payload::AfterPasswordChange(user(u)),
        EventPayload::AfterPasswordReset { user: u } => Payload::AfterPasswordReset(user(u)),
        EventPayload::AfterEmailVerify { user: u } => Payload::AfterEmailVerify(user(u)),
        EventPayload::SendVerificationEmail { email, token } => {
            Payload::SendVerificationEmail(EmailToken {
                email: email.clone(),
                token: token.clone(),
            })
        }
        EventPayload::SendPasswordResetEmail { email, token } => {
            Payload::SendPasswordResetEmail(EmailToken {
                email: email.clone(),
                token: token.clone(),
            })
        }
        EventPayload::AfterOauthLogin {
            user: u,
            provider,
            is_new_user,
        } => Payload::AfterOauthLogin(OauthLogin {
            user: user(u),
            provider: provider.clone(),
            is_new_user: *is_new_user,
        }),
        EventPayload::AfterOauthRegister { user: u, user_info } => {
            Payload::AfterOauthRegister(OauthRegister {
                user: user(u),
                user_info: OauthUserInfo {
                    provider: user_info.provider.clone(),
                    subject: user_info.subject.clone(),
                    email: user_info.email.clone(),
                    email_verified: user_info.email_verified,
                    name: user_info.name.clone(),
                    picture: user_info.picture.clone(),
                },
            })
        }
        EventPayload::AfterOauthLink { user: u, provider } => Payload::AfterOauthLink(OauthLink {
            user: user(u),
            provider: provider.clone(),
        }),
        EventPayload::AfterOauthUnlink { user: u, provider } => {
            Payload::AfterOauthUnlink(OauthLink {
                user: user(u),
                provider: provider.clone(),
            })
        }
        EventPayload::AfterMfaEnabled { user: u } => Payload::AfterMfaEnabled(user(u)),
        EventPayload::AfterMfaDisabled { user: u } => Payload::AfterMfaDisabled(user(u)),
    };
    WitEvent {
        tenant: event.tenant.as_str().to_owned(),
        occurred_at: u64::try_from(event.occurred_at).unwrap_or(0),
        context: RequestContext {
            event_id: event.id.clone(),
            request_id: event.context.request_id.clone(),
            client_ip: event.context.client_ip.clone(),
            user_agent: event.context.user_agent.clone(),
        },
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_kind_has_a_wit_kind() {
        let all = [
            WitEventKind::AfterRegister,
            WitEventKind::AfterLogin,
            WitEventKind::AfterLogout,
            WitEventKind::AfterPasswordChange,
            WitEventKind::AfterPasswordReset,
            WitEventKind::AfterEmailVerify,
            WitEventKind::SendVerificationEmail,
            WitEventKind::SendPasswordResetEmail,
            WitEventKind::AfterOauthLogin,
            WitEventKind::AfterOauthRegister,
            WitEventKind::AfterOauthLink,
            WitEventKind::AfterOauthUnlink,
            WitEventKind::AfterMfaEnabled,
            WitEventKind::AfterMfaDisabled,
        ];
        let mapped: Vec<_> = all.into_iter().filter_map(domain_kind).collect();
        assert_eq!(mapped, EventKind::ALL);
    }

    #[test]
    fn mfa_events_reach_hooks_with_their_user() {
        let snapshot = crate::domain::UserSnapshot {
            id: "0190d1c4-0000-7000-8000-000000000001".into(),
            email: "ann@example.com".into(),
            is_active: true,
            is_verified: true,
            is_superuser: false,
            roles: vec!["editor".into()],
            profile: Default::default(),
        };
        for (payload, enabled) in [
            (
                EventPayload::AfterMfaEnabled {
                    user: snapshot.clone(),
                },
                true,
            ),
            (
                EventPayload::AfterMfaDisabled {
                    user: snapshot.clone(),
                },
                false,
            ),
        ] {
            let event = Event {
                id: "ev-1".into(),
                seq: 1,
                tenant: crate::domain::TenantId::default_tenant(),
                occurred_at: 1_000,
                context: Default::default(),
                payload,
            };
            match (wit_event(&event).payload, enabled) {
                (Payload::AfterMfaEnabled(u), true) | (Payload::AfterMfaDisabled(u), false) => {
                    assert_eq!(u.email, "ann@example.com");
                    assert_eq!(u.roles, ["editor"]);
                }
                (other, _) => panic!("wrong payload: {other:?}"),
            }
        }
    }
}
