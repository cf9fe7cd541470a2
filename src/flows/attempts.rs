//! Every check of a password against a stored hash (login, change-password, DELETE /me) goes
//! through here, so each one counts towards the same lockout and none can be used to guess
//! around it.

use super::{FlowError, Flows};
use crate::crypto::Verification;
use crate::domain::{Password, TenantId};

/// What a guarded verification found.
pub(super) enum Attempt {
    Match,
    Mismatch,
    /// Locked, or the allowed attempts are already in flight: the hash was not consulted.
    Refused,
}

impl Flows {
    /// Reserves an attempt for `key` (the normalised email) before verifying, records the
    /// failure or clears the count after. With lockout off this is a plain verification.
    pub(super) async fn guarded_verify(
        &self,
        tenant: &TenantId,
        key: &str,
        password: Password,
        stored_hash: String,
    ) -> Result<Attempt, FlowError> {
        if !self.reserve_attempt(tenant, key).await? {
            return Ok(Attempt::Refused);
        }
        match self.verify_password(password, stored_hash).await? {
            Verification::Match { .. } => {
                self.clear_attempts(tenant, key).await?;
                Ok(Attempt::Match)
            }
            Verification::Mismatch => {
                self.record_failure(tenant, key).await?;
                Ok(Attempt::Mismatch)
            }
        }
    }

    /// `false`: refuse without verifying (and without changing the count or the lock).
    pub(super) async fn reserve_attempt(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<bool, FlowError> {
        match self.settings.lockout {
            Some(policy) => Ok(self
                .store
                .reserve_login_attempt(tenant, key, policy, self.clock.now_millis())
                .await?),
            None => Ok(true),
        }
    }

    /// A reserved attempt failed.
    pub(super) async fn record_failure(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<(), FlowError> {
        if let Some(policy) = self.settings.lockout {
            self.store
                .record_login_failure(tenant, key, policy, self.clock.now_millis())
                .await?;
        }
        Ok(())
    }

    /// The password (or the mailbox) was proven: the count and any lock are gone.
    pub(super) async fn clear_attempts(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<(), FlowError> {
        if self.settings.lockout.is_some() {
            self.store.clear_login_failures(tenant, key).await?;
        }
        Ok(())
    }
}
