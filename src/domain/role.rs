use std::fmt;

/// A role or permission name: 1–64 of `[A-Za-z0-9_.:-]`. Restricted so names can be joined in
/// SQL aggregates and JWT claims without escaping.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 1-64 characters of letters, digits, '_', '.', ':' and '-'")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
