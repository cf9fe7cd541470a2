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
    /// Locked (also after waiting for the attempts in flight): the hash was not consulted.
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

    /// Reserves an attempt; `false`: refuse without verifying (and without changing the
    /// count or the lock). An account that is not locked but has its allowed attempts in
    /// flight (several correct logins at once, say) waits for them instead of refusing a
    /// correct password: each resolves within one hash, freeing its reservation or, as the
    /// last allowed failure, setting the lock. A locked account is refused at once, so a lock
    /// costs an attacker nothing new and is never moved.
    pub(super) async fn reserve_attempt(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<bool, FlowError> {
        /// Pauses between tries; the last repeats until the deadline.
        const BACKOFF_MS: [u64; 6] = [10, 20, 40, 80, 160, 250];
        /// Longer than a queue of hashes on a busy machine: a guard, not a target.
        const GIVE_UP_MS: u64 = 10_000;
        let Some(policy) = self.settings.lockout else {
            return Ok(true);
        };
        let mut waited = 0;
        let mut step = 0;
        loop {
            let now = self.clock.now_millis();
            if self
                .store
                .reserve_login_attempt(tenant, key, policy, now)
                .await?
            {
                return Ok(true);
            }
            let (_, locked) = self.store.login_attempts(tenant, key, now).await?;
            if locked || waited >= GIVE_UP_MS {
                return Ok(false);
            }
            let pause = BACKOFF_MS[step.min(BACKOFF_MS.len() - 1)];
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            waited += pause;
            step += 1;
        }
    }

    /// A reserved attempt failed.
    pub(super) async fn record_failure(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<(), FlowError> {
        if let Some(policy) = self.settings.lockout {
            let locked = self
                .store
                .record_login_failure(tenant, key, policy, self.clock.now_millis())
                .await?;
            if locked {
                self.metrics.record_lockout(tenant.as_str());
            }
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
