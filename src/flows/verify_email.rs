use super::{FlowError, Flows, Session};
use crate::crypto::{OpaqueToken, hash_token};
use crate::domain::{EventPayload, RequestContext, TenantId};
use crate::store::{Announce, ConsumeOutcome, TokenPurpose};

/// Mints a verification token for an unverified user and records `send_verification_email`
/// (the token reaches the user only through a hook). Verified users, and users over their
/// verification-email limit, get the same answer and no email.
pub async fn request_email_verification(
    flows: &Flows,
    session: &Session,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let user = &session.user;
    if user.is_verified {
        return Ok(());
    }
    let now = flows.clock.now_millis();
    // At most `limit` verification emails per account per window; beyond it the same answer.
    if !flows
        .store
        .reserve_email_send(
            &user.tenant,
            &user.id,
            "verify_email",
            flows.settings.verify_email_limit,
            now,
        )
        .await?
    {
        return Ok(());
    }
    let token = OpaqueToken::generate();
    let event = EventPayload::SendVerificationEmail {
        email: user.email.clone(),
        token: token.token,
    };
    flows
        .store
        .issue_one_time_token(
            &user.tenant,
            &user.id,
            TokenPurpose::VerifyEmail,
            &token.digest,
            now + flows.settings.email_verify_ttl_millis,
            Some(Announce::about(user, event, ctx)),
            now,
        )
        .await?;
    Ok(())
}

pub async fn confirm_email(
    flows: &Flows,
    tenant: &TenantId,
    token: &str,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    match flows
        .store
        .confirm_email(
            tenant,
            &hash_token(token),
            |user| {
                let payload = EventPayload::AfterEmailVerify {
                    user: user.snapshot(),
                };
                Announce::about(user, payload, ctx)
            },
            flows.clock.now_millis(),
        )
        .await?
    {
        ConsumeOutcome::Done(_) => Ok(()),
        ConsumeOutcome::Invalid => Err(FlowError::InvalidCredentials),
    }
}
