use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

use crate::domain::Password;

/// argon2id with configured parameters. Every call here burns tens of milliseconds of CPU, so
/// callers run it on the blocking pool, never on the async runtime.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when the user does not exist so that
    /// unknown and known emails take the same time.
    dummy_hash: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    /// The password is right; `outdated` says the stored hash uses other parameters (or another
    /// algorithm) and should be replaced.
    Match {
        outdated: bool,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("invalid argon2 parameters: {0}")]
pub struct ParamsError(String);

impl PasswordHasher {
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, ParamsError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| ParamsError(e.to_string()))?;
        let mut hasher = Self {
            params,
            dummy_hash: String::new(),
        };
        hasher.dummy_hash = hasher.hash(&Password::new(uuid::Uuid::new_v4().to_string()));
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string: `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    pub fn hash(&self, password: &Password) -> String {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.expose().as_bytes(), &salt)
            .expect("argon2 hashing with validated parameters cannot fail")
            .to_string()
    }

    /// Verifies with the parameters recorded in the stored hash (argon2 compares in constant
    /// time), then tells whether those parameters are the current ones.
    pub fn verify(&self, password: &Password, stored: &str) -> Verification {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return Verification::Mismatch;
        };
        if self
            .argon2()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_err()
        {
            return Verification::Mismatch;
        }
        let current = parsed.algorithm.as_str() == "argon2id"
            && parsed.version == Some(Version::V0x13.into())
            && Params::try_from(&parsed).is_ok_and(|p| {
                p.m_cost() == self.params.m_cost()
                    && p.t_cost() == self.params.t_cost()
                    && p.p_cost() == self.params.p_cost()
            });
        Verification::Match { outdated: !current }
    }

    /// Spends the same time as a real verification, for users that do not exist.
    pub fn verify_dummy(&self, password: &Password) {
        let _ = self.verify(password, &self.dummy_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(1024, 1, 1).unwrap()
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hasher = cheap();
        let pw = Password::new("correct horse".into());
        let hash = hasher.hash(&pw);
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(
            hasher.verify(&pw, &hash),
            Verification::Match { outdated: false }
        );
        assert_eq!(
            hasher.verify(&Password::new("wrong".into()), &hash),
            Verification::Mismatch
        );
        assert_eq!(hasher.verify(&pw, "garbage"), Verification::Mismatch);
    }

    #[test]
    fn hashes_with_other_parameters_are_outdated() {
        let old = PasswordHasher::new(2048, 1, 1).unwrap();
        let pw = Password::new("correct horse".into());
        let hash = old.hash(&pw);
        assert_eq!(
            cheap().verify(&pw, &hash),
            Verification::Match { outdated: true }
        );
    }
}
