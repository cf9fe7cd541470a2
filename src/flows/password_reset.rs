use super::{FlowError, Flows};
use crate::crypto::{OpaqueToken, hash_token};
use crate::domain::{Email, EventPayload, Password, RequestContext, TenantId};
use crate::store::{Announce, ConsumeOutcome, TokenPurpose};

/// Mints a reset token for an existing active account and records
/// `send_password_reset_email` with the stored address. The caller answers identically
/// whether or not the account exists.
pub async fn request_password_reset(
    flows: &Flows,
    tenant: &TenantId,
    email: &Email,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let Some(user) = flows
        .store
        .find_user_by_email(tenant, email.as_str())
        .await?
        .filter(|u| u.is_active)
    else {
        return Ok(());
    };
    let token = OpaqueToken::generate();
    let now = flows.clock.now_millis();
    let event = EventPayload::SendPasswordResetEmail {
        email: user.email.clone(),
        token: token.token,
    };
    flows
        .store
        .issue_one_time_token(
            tenant,
            &user.id,
            TokenPurpose::PasswordReset,
            &token.digest,
            now + flows.settings.password_reset_ttl_millis,
            Announce::about(&user, event, ctx),
            now,
        )
        .await?;
    Ok(())
}

/// Sets a new password with a reset token. A policy failure leaves the token usable; any
/// other refusal is the credentials error.
pub async fn confirm_password_reset(
    flows: &Flows,
    tenant: &TenantId,
    token: &str,
    new_password: Password,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let digest = hash_token(token);
    let live = flows
        .store
        .one_time_token_is_live(
            tenant,
            &digest,
            TokenPurpose::PasswordReset,
            flows.clock.now_millis(),
        )
        .await?;
    if !live {
        // Checked first, as the library does, and so garbage tokens never buy an argon2 run.
        return Err(FlowError::InvalidCredentials);
    }
    flows
        .settings
        .password_policy
        .check(&new_password)
        .map_err(FlowError::PasswordPolicy)?;
    let new_hash = flows.hash_password(new_password).await?;
    let now = flows.clock.now_millis();
    match flows
        .store
        .reset_password(
            tenant,
            &digest,
            &new_hash,
            flows.session_cutoff(now),
            |user| {
                let payload = EventPayload::AfterPasswordReset {
                    user: user.snapshot(),
                };
                Announce::about(user, payload, ctx)
            },
            now,
        )
        .await?
    {
        ConsumeOutcome::Done(_) => Ok(()),
        ConsumeOutcome::Invalid => Err(FlowError::InvalidCredentials),
    }
}
