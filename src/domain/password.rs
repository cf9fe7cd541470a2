use std::fmt;

/// A plaintext password on its way to the hasher. Never printed, never logged.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(raw: String) -> Self {
        Self(raw)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in code points, as the policy counts it.
    pub fn char_len(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Length rules applied on register, change-password and reset-confirm.
#[derive(Clone, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
    /// 0 = no cap.
    pub max_length: usize,
}

impl PasswordPolicy {
    /// Every rule the password breaks, joined by `"; "` (the peer's message format).
    pub fn check(&self, password: &Password) -> Result<(), String> {
        let len = password.char_len();
        let mut problems = Vec::new();
        if len < self.min_length {
            problems.push(format!(
                "Password must be at least {} characters",
                self.min_length
            ));
        }
        if self.max_length > 0 && len > self.max_length {
            problems.push(format!(
                "Password must be at most {} characters",
                self.max_length
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Login refuses over-long passwords before hashing so nobody can make us hash megabytes.
    pub fn too_long_to_hash(&self, password: &Password) -> bool {
        self.max_length > 0 && password.char_len() > self.max_length
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_counts_code_points_and_reports_each_problem() {
        let policy = PasswordPolicy {
            min_length: 8,
            max_length: 10,
        };
        assert!(policy.check(&Password::new("ééééééééé".into())).is_ok());
        assert_eq!(
            policy.check(&Password::new("short".into())).unwrap_err(),
            "Password must be at least 8 characters"
        );
        assert_eq!(
            policy.check(&Password::new("x".repeat(11))).unwrap_err(),
            "Password must be at most 10 characters"
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        assert!(!format!("{:?}", Password::new("hunter22".into())).contains("hunter"));
    }
}
