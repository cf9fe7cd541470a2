use super::attempts::Attempt;
use super::{FlowError, Flows, Session};
use crate::domain::{
    EventPayload, GateQuestion, Password, PasswordReason, PasswordSubject, RequestContext,
};
use crate::store::Announce;

/// Sets a new password, ends every session of the user (the caller's included), voids
/// outstanding reset links and records `after_password_change` with the pre-change user.
/// The current password is checked under the account's lockout, like a login.
pub async fn change_password(
    flows: &Flows,
    session: &Session,
    current: Option<Password>,
    new: Password,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let user = &session.user;
    match (&user.hashed_password, current.filter(|p| !p.is_empty())) {
        (Some(hash), Some(current)) => {
            // Counts towards the same lockout as login, so a stolen session cannot be used to
            // guess the password around it (stored emails are normalised lockout keys).
            match flows
                .guarded_verify(&user.tenant, &user.email, current, hash.clone())
                .await?
            {
                Attempt::Match => {}
                Attempt::Mismatch | Attempt::Refused => {
                    return Err(FlowError::CurrentPasswordIncorrect);
                }
            }
        }
        (Some(_), None) => return Err(FlowError::CurrentPasswordIncorrect),
        // An OAuth-only account may set a first password, but only from a fresh session.
        (None, _) => {
            if session.auth_age_secs(flows.clock.now_secs()) > flows.settings.reauth_max_age_secs {
                return Err(FlowError::ReauthenticationRequired);
            }
        }
    }
    flows
        .settings
        .password_policy
        .check(&new, Some(&user.email))
        .map_err(FlowError::PasswordPolicy)?;
    flows
        .ask_gates(
            &user.tenant,
            GateQuestion::CheckPassword {
                subject: PasswordSubject::User(user.snapshot()),
                password: new.clone(),
                why: PasswordReason::Change,
            },
            ctx,
        )
        .await?;
    let new_hash = flows.hash_password(new).await?;
    let now = flows.clock.now_millis();
    let payload = EventPayload::AfterPasswordChange {
        user: user.snapshot(),
    };
    let changed = flows
        .store
        .change_password(
            user,
            user.hashed_password.as_deref(),
            &new_hash,
            flows.session_cutoff(now),
            Announce::about(user, payload, ctx),
            now,
        )
        .await?;
    if changed {
        Ok(())
    } else {
        // Someone changed the password between our check and our write.
        Err(FlowError::CurrentPasswordIncorrect)
    }
}
