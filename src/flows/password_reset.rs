use super::{Clock, FlowError, Flows};
use crate::crypto::{OpaqueToken, hash_token};
use crate::domain::{
    Email, EventPayload, GateQuestion, Password, PasswordReason, PasswordSubject, RequestContext,
    TenantId, UserId,
};
use crate::store::{Announce, ConsumeOutcome, EmailLimit, Store, TokenPurpose};

/// Accepts a reset request: the caller answers at once, identically whether or not the
/// account exists, and the work (looking the address up, minting a token and recording
/// `send_password_reset_email` with the stored address) happens off the response path, so the
/// response time cannot tell a known address from an unknown one. The request path does the
/// same two things for every address: wait for a place among the bounded reset jobs, spawn.
pub async fn request_password_reset(
    flows: &Flows,
    tenant: &TenantId,
    email: &Email,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let permit = flows
        .reset_jobs
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| FlowError::Internal("reset jobs closed".into()))?;
    let job = ResetJob {
        store: flows.store.clone(),
        clock: flows.clock.clone(),
        ttl_millis: flows.settings.password_reset_ttl_millis,
        limit: flows.settings.reset_email_limit,
        tenant: tenant.clone(),
        email: email.clone(),
        ctx: ctx.clone(),
    };
    tokio::spawn(async move {
        if let Err(e) = job.run().await {
            tracing::warn!(tenant = %job.tenant, error = %e, "password reset request failed");
        }
        drop(permit);
    });
    Ok(())
}

struct ResetJob {
    store: Store,
    clock: Clock,
    ttl_millis: i64,
    limit: EmailLimit,
    tenant: TenantId,
    email: Email,
    ctx: RequestContext,
}

impl ResetJob {
    async fn run(&self) -> Result<(), FlowError> {
        let Some(user) = self
            .store
            .find_user_by_email(&self.tenant, self.email.as_str())
            .await?
            .filter(|u| u.is_active)
        else {
            return Ok(());
        };
        let now = self.clock.now_millis();
        // A mailbox gets at most `limit` reset emails per window, however many addresses ask.
        if !self
            .store
            .reserve_email_send(&self.tenant, &user.id, "password_reset", self.limit, now)
            .await?
        {
            tracing::info!(tenant = %self.tenant, user = %user.id,
                "password reset email limit reached; request ignored");
            return Ok(());
        }
        let token = OpaqueToken::generate();
        let event = EventPayload::SendPasswordResetEmail {
            email: user.email.clone(),
            token: token.token,
        };
        self.store
            .issue_one_time_token(
                &self.tenant,
                &user.id,
                TokenPurpose::PasswordReset,
                &token.digest,
                now + self.ttl_millis,
                Some(Announce::about(&user, event, &self.ctx)),
                now,
            )
            .await?;
        Ok(())
    }
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
    let owner = flows
        .store
        .one_time_token_user(
            tenant,
            &digest,
            TokenPurpose::PasswordReset,
            flows.clock.now_millis(),
        )
        .await?;
    // Checked first, as the library does, and so garbage tokens never buy an argon2 run.
    let Some(owner) = owner.and_then(|id| UserId::parse(&id)) else {
        return Err(FlowError::InvalidCredentials);
    };
    let Some(user) = flows.store.find_user(tenant, &owner).await? else {
        return Err(FlowError::InvalidCredentials);
    };
    flows
        .settings
        .password_policy
        .check(&new_password, Some(&user.email))
        .map_err(FlowError::PasswordPolicy)?;
    flows
        .ask_gates(
            tenant,
            GateQuestion::CheckPassword {
                subject: PasswordSubject::User(user.snapshot()),
                password: new_password.clone(),
                why: PasswordReason::Reset,
            },
            ctx,
        )
        .await?;
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
        ConsumeOutcome::Done(user) => {
            // Proof of the mailbox lifts a lockout, so someone guessing from many addresses
            // cannot keep the owner out. After the commit: if this fails, the reset stands and
            // the lock simply runs out.
            if let Err(e) = flows.clear_attempts(tenant, &user.email).await {
                tracing::warn!(tenant = %tenant, user = %user.id, error = %e,
                    "could not lift the lockout after a password reset");
            }
            Ok(())
        }
        ConsumeOutcome::Invalid => Err(FlowError::InvalidCredentials),
    }
}
