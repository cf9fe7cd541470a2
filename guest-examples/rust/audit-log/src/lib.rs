//! Logs every event into the server's log, with who, what and from where. Never logs tokens.

wit_bindgen::generate!({ world: "hook", path: "../../../wit/v0.1.0" });

use exports::hookauth::hooks::handler::Guest;
use hookauth::hooks::host::{Level, log};
use hookauth::hooks::types::{Event, EventKind, Payload, Registration, User};

struct AuditLog;

const ALL: [EventKind; 14] = [
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

fn user_fields(fields: &mut Vec<(String, String)>, user: &User) {
    fields.push(("user_id".into(), user.id.clone()));
    fields.push(("email".into(), user.email.clone()));
}

impl Guest for AuditLog {
    fn register() -> Registration {
        Registration {
            events: ALL.to_vec(),
            config: vec![],
            secrets: vec![],
        }
    }

    fn handle(event: Event) -> Result<(), String> {
        let mut fields = vec![
            ("event_id".to_string(), event.context.event_id.clone()),
            ("tenant".to_string(), event.tenant.clone()),
        ];
        if let Some(ip) = &event.context.client_ip {
            fields.push(("client_ip".into(), ip.clone()));
        }
        let what = match &event.payload {
            Payload::AfterRegister(u) => ("after_register", Some(u)),
            Payload::AfterLogin(u) => ("after_login", Some(u)),
            Payload::AfterLogout(id) => {
                fields.push(("user_id".into(), id.clone()));
                ("after_logout", None)
            }
            Payload::AfterPasswordChange(u) => ("after_password_change", Some(u)),
            Payload::AfterPasswordReset(u) => ("after_password_reset", Some(u)),
            Payload::AfterEmailVerify(u) => ("after_email_verify", Some(u)),
            // The token is a credential: only the address is logged.
            Payload::SendVerificationEmail(t) => {
                fields.push(("email".into(), t.email.clone()));
                ("send_verification_email", None)
            }
            Payload::SendPasswordResetEmail(t) => {
                fields.push(("email".into(), t.email.clone()));
                ("send_password_reset_email", None)
            }
            Payload::AfterOauthLogin(o) => {
                fields.push(("provider".into(), o.provider.clone()));
                fields.push(("is_new_user".into(), o.is_new_user.to_string()));
                ("after_oauth_login", Some(&o.user))
            }
            Payload::AfterOauthRegister(o) => {
                fields.push(("provider".into(), o.user_info.provider.clone()));
                ("after_oauth_register", Some(&o.user))
            }
            Payload::AfterOauthLink(o) => {
                fields.push(("provider".into(), o.provider.clone()));
                ("after_oauth_link", Some(&o.user))
            }
            Payload::AfterOauthUnlink(o) => {
                fields.push(("provider".into(), o.provider.clone()));
                ("after_oauth_unlink", Some(&o.user))
            }
            Payload::AfterMfaEnabled(u) => ("after_mfa_enabled", Some(u)),
            Payload::AfterMfaDisabled(u) => ("after_mfa_disabled", Some(u)),
        };
        if let Some(user) = what.1 {
            user_fields(&mut fields, user);
        }
        log(Level::Info, &format!("audit: {}", what.0), &fields);
        Ok(())
    }
}

export!(AuditLog);
