//! TOTP second factor (RFC 6238), as fastapi-fullauth's `/mfa` routes: enrol, confirm with a
//! first code (recovery codes are shown once), verify at sign-in, disable with a code.
//!
//! The ways around a second factor are what matter, so:
//! - a secret does nothing until a first code confirms it (a half-finished enrolment never
//!   locks the account out);
//! - every accepted code moves the stored time step forward, and a code of that step or an
//!   earlier one is refused, so a code read over a shoulder cannot be replayed (not even by
//!   two requests at once: one UPDATE wins);
//! - code guesses are reserved and counted under their own lockout key (`mfa:<user id>`)
//!   before any code is checked, like passwords: six digits are a small space. A correct
//!   password never clears that count, so knowing the password buys no fresh guesses;
//! - the secret is sealed at rest (bound to the tenant and the user), recovery codes are
//!   stored as SHA-256 digests and deleted when used.

use super::login::finish_sign_in;
use super::{FlowError, Flows, Session, TokenPair};
use crate::crypto::totp::{self, TotpSecret};
use crate::crypto::{OpaqueToken, hash_token};
use crate::domain::{EventPayload, Password, RequestContext, TenantId, User, UserId};
use crate::store::{Announce, MfaChange, TokenPurpose};

/// Settings of the second factor.
#[derive(Clone, Debug)]
pub struct MfaSettings {
    /// Off: the `/mfa` routes answer 404 and no sign-in asks for a code.
    pub enabled: bool,
    /// The name authenticator apps show.
    pub issuer: String,
    /// How long an `mfa_token` from a correct password stays usable.
    pub pending_ttl_millis: i64,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaStatus {
    pub enabled: bool,
    pub recovery_codes_remaining: u32,
}

/// A started enrolment: nothing until confirmed.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaEnrolment {
    /// For typing in by hand when the QR code cannot be scanned.
    pub secret: String,
    /// `otpauth://` URI for the QR code; it holds the secret, so it is never logged.
    pub provisioning_uri: String,
}

impl std::fmt::Debug for MfaEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaEnrolment(<secret>)")
    }
}

/// Why an MFA request was refused (beyond the common flow errors).
fn disabled() -> FlowError {
    FlowError::NotFound("Two-factor authentication is not enabled")
}

pub async fn mfa_status(flows: &Flows, session: &Session) -> Result<MfaStatus, FlowError> {
    flows.require_mfa()?;
    let user = &session.user;
    Ok(
        match flows.store.mfa_credential(&user.tenant, &user.id).await? {
            Some(c) if c.confirmed => MfaStatus {
                enabled: true,
                recovery_codes_remaining: c.recovery_codes_left,
            },
            _ => MfaStatus {
                enabled: false,
                recovery_codes_remaining: 0,
            },
        },
    )
}

/// Starts (or restarts) an enrolment. Adding a factor is an account-security action, so it
/// needs the current password or a session whose credentials were proven recently.
pub async fn mfa_enroll(
    flows: &Flows,
    session: &Session,
    current_password: Option<Password>,
) -> Result<MfaEnrolment, FlowError> {
    flows.require_mfa()?;
    let user = &session.user;
    flows.prove_presence(session, current_password).await?;
    let secret = TotpSecret::generate();
    let sealed = flows.seal_totp(user, &secret)?;
    match flows
        .store
        .begin_mfa_enrolment(&user.tenant, &user.id, sealed, flows.clock.now_millis())
        .await?
    {
        MfaChange::Done => Ok(MfaEnrolment {
            provisioning_uri: totp::provisioning_uri(
                &secret,
                &user.email,
                &flows.settings.mfa.issuer,
            ),
            secret: secret.to_base32(),
        }),
        MfaChange::AlreadyEnabled | MfaChange::NotEnrolled => Err(FlowError::MfaAlreadyEnabled),
    }
}

/// Turns the enrolment live with a first code; answers the recovery codes (shown once) and
/// records `after_mfa_enabled`.
pub async fn mfa_confirm(
    flows: &Flows,
    session: &Session,
    code: &str,
    ctx: &RequestContext,
) -> Result<Vec<String>, FlowError> {
    flows.require_mfa()?;
    let user = &session.user;
    let credential = flows
        .store
        .mfa_credential(&user.tenant, &user.id)
        .await?
        .ok_or(FlowError::MfaNotEnrolled)?;
    if credential.confirmed {
        return Err(FlowError::MfaAlreadyEnabled);
    }
    let key = lockout_key(&user.id);
    if !flows.reserve_attempt(&user.tenant, &key).await? {
        return Err(FlowError::InvalidMfaCode);
    }
    let secret = flows.open_totp(user, &credential.sealed_secret)?;
    let Some(step) = totp::matching_step(&secret, code, flows.clock.now_secs()) else {
        flows.record_failure(&user.tenant, &key).await?;
        return Err(FlowError::InvalidMfaCode);
    };
    let codes = totp::generate_recovery_codes();
    let digests: Vec<String> = codes.iter().map(|c| totp::hash_recovery_code(c)).collect();
    let event = EventPayload::AfterMfaEnabled {
        user: user.snapshot(),
    };
    let change = flows
        .store
        .confirm_mfa(
            &user.tenant,
            &user.id,
            step_i64(step),
            &digests,
            Announce::about(user, event, ctx),
            flows.clock.now_millis(),
        )
        .await?;
    flows.clear_attempts(&user.tenant, &key).await?;
    match change {
        MfaChange::Done => Ok(codes),
        MfaChange::AlreadyEnabled => Err(FlowError::MfaAlreadyEnabled),
        MfaChange::NotEnrolled => Err(FlowError::MfaNotEnrolled),
    }
}

/// Turns the factor off; needs a current code (or a recovery code), checked like any other,
/// and records `after_mfa_disabled`.
pub async fn mfa_disable(
    flows: &Flows,
    session: &Session,
    code: &str,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    flows.require_mfa()?;
    let user = &session.user;
    if !flows.mfa_enabled_for(user).await? {
        return Err(FlowError::MfaNotEnrolled);
    }
    if !flows.second_factor(user, code).await? {
        return Err(FlowError::InvalidMfaCode);
    }
    let event = EventPayload::AfterMfaDisabled {
        user: user.snapshot(),
    };
    flows
        .store
        .disable_mfa(
            &user.tenant,
            &user.id,
            Announce::about(user, event, ctx),
            flows.clock.now_millis(),
        )
        .await?;
    Ok(())
}

/// The second step of a password sign-in: the `mfa_token` from `/login` and a code (or a
/// recovery code) for the token pair. Every failure is the same credentials error; the token
/// survives a wrong code (the user may mistype) and is burned by the success.
pub async fn mfa_verify(
    flows: &Flows,
    tenant: &TenantId,
    mfa_token: &str,
    code: &str,
    ctx: &RequestContext,
) -> Result<(TokenPair, User), FlowError> {
    flows.require_mfa()?;
    let digest = hash_token(mfa_token);
    let now = flows.clock.now_millis();
    let user_id = flows
        .store
        .one_time_token_user(tenant, &digest, TokenPurpose::MfaPending, now)
        .await?
        .and_then(|id| UserId::parse(&id))
        .ok_or(FlowError::InvalidCredentials)?;
    let user = flows
        .store
        .find_user(tenant, &user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or(FlowError::InvalidCredentials)?;
    if !flows.second_factor(&user, code).await? {
        return Err(FlowError::InvalidCredentials);
    }
    // Single use: of two verifications racing with two good codes, one session starts.
    if flows
        .store
        .consume_one_time_token(tenant, &digest, TokenPurpose::MfaPending, now)
        .await?
        .is_none()
    {
        return Err(FlowError::InvalidCredentials);
    }
    // Stored emails are the normalised lockout keys.
    let key = user.email.clone();
    finish_sign_in(flows, user, &key, ctx).await
}

/// Code guesses count here, apart from the password's count (keyed by email, which always
/// holds an `@`, so the two never meet).
fn lockout_key(user: &UserId) -> String {
    format!("mfa:{user}")
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

impl Flows {
    fn require_mfa(&self) -> Result<(), FlowError> {
        if self.settings.mfa.enabled {
            Ok(())
        } else {
            Err(disabled())
        }
    }

    /// Whether signing in as `user` needs a second factor.
    pub(super) async fn mfa_enabled_for(&self, user: &User) -> Result<bool, FlowError> {
        if !self.settings.mfa.enabled {
            return Ok(false);
        }
        Ok(self
            .store
            .mfa_credential(&user.tenant, &user.id)
            .await?
            .is_some_and(|c| c.confirmed))
    }

    pub(super) async fn issue_mfa_token(&self, user: &User) -> Result<String, FlowError> {
        let token = OpaqueToken::generate();
        let now = self.clock.now_millis();
        self.store
            .issue_one_time_token(
                &user.tenant,
                &user.id,
                TokenPurpose::MfaPending,
                &token.digest,
                now + self.settings.mfa.pending_ttl_millis,
                None,
                now,
            )
            .await?;
        Ok(token.token)
    }

    /// Checks a TOTP code or a recovery code under the user's code lockout. `false`: wrong,
    /// replayed, or locked (then nothing was checked).
    async fn second_factor(&self, user: &User, code: &str) -> Result<bool, FlowError> {
        let key = lockout_key(&user.id);
        if !self.reserve_attempt(&user.tenant, &key).await? {
            return Ok(false);
        }
        let accepted = self.check_code(user, code).await?;
        if accepted {
            self.clear_attempts(&user.tenant, &key).await?;
        } else {
            self.record_failure(&user.tenant, &key).await?;
        }
        Ok(accepted)
    }

    async fn check_code(&self, user: &User, code: &str) -> Result<bool, FlowError> {
        let Some(credential) = self
            .store
            .mfa_credential(&user.tenant, &user.id)
            .await?
            .filter(|c| c.confirmed)
        else {
            return Ok(false);
        };
        let secret = self.open_totp(user, &credential.sealed_secret)?;
        if let Some(step) = totp::matching_step(&secret, code, self.clock.now_secs()) {
            return Ok(self
                .store
                .advance_mfa_step(&user.tenant, &user.id, step_i64(step))
                .await?);
        }
        Ok(self
            .store
            .consume_recovery_code(&user.tenant, &user.id, &totp::hash_recovery_code(code))
            .await?)
    }

    /// The current password, or a session proven within `reauth_max_age_seconds`.
    async fn prove_presence(
        &self,
        session: &Session,
        current_password: Option<Password>,
    ) -> Result<(), FlowError> {
        let user = &session.user;
        match (
            current_password.filter(|p| !p.is_empty()),
            &user.hashed_password,
        ) {
            (Some(password), Some(hash)) => {
                match self
                    .guarded_verify(&user.tenant, &user.email, password, hash.clone())
                    .await?
                {
                    super::attempts::Attempt::Match => Ok(()),
                    _ => Err(FlowError::CurrentPasswordRejected),
                }
            }
            (Some(_), None) => Err(FlowError::CurrentPasswordRejected),
            (None, _) => {
                if session.auth_age_secs(self.clock.now_secs()) > self.settings.reauth_max_age_secs
                {
                    Err(FlowError::ReauthenticationRequired)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn seal_totp(&self, user: &User, secret: &TotpSecret) -> Result<Vec<u8>, FlowError> {
        self.seal_totp_for(&user.tenant, &user.id, secret)
    }

    /// The secret, sealed to (tenant, user): a row copied onto another user does not open.
    pub(super) fn seal_totp_for(
        &self,
        tenant: &TenantId,
        user: &UserId,
        secret: &TotpSecret,
    ) -> Result<Vec<u8>, FlowError> {
        self.sealer
            .seal(
                tenant.as_str(),
                &lockout_key(user),
                secret.to_base32().as_bytes(),
            )
            .map_err(|e| FlowError::Internal(format!("sealing a TOTP secret: {e}")))
    }

    fn open_totp(&self, user: &User, sealed: &[u8]) -> Result<TotpSecret, FlowError> {
        let opened = self
            .sealer
            .open(user.tenant.as_str(), &lockout_key(&user.id), sealed)
            .map_err(|e| FlowError::Internal(format!("opening the TOTP secret: {e}")))?;
        std::str::from_utf8(&opened)
            .ok()
            .and_then(TotpSecret::from_base32)
            .ok_or_else(|| FlowError::Internal("a stored TOTP secret is corrupt".into()))
    }
}
