//! `hooks.toml`: the operator's per-hook settings, next to the `*.wasm` files.
//!
//! ```toml
//! [hooks.20-welcome]                  # the file name without `.wasm`
//! events = ["after_register"]         # a subset of what the hook subscribes to
//! fuel = 50_000_000                   # CPU budget per event (~5-40 ms)
//! memory_mib = 16                     # linear memory cap
//! timeout_ms = 1000                   # wall clock per event, host calls included
//! allowed_hosts = ["api.mailer.example", "127.0.0.1:8025"]
//! order = -10                         # lower runs earlier; ties keep file-name order
//! config = { url = "https://api.mailer.example/send" }
//! secrets = { api_key = "MAILER_API_KEY" }   # environment variable names, never values
//! ```
//!
//! Unknown keys are rejected, so a typo never silently loosens a limit.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::domain::EventKind;

/// The file name the loader looks for in the hooks directory.
pub const MANIFEST_FILE: &str = "hooks.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub hooks: BTreeMap<String, HookEntry>,
}

/// One hook's settings. Everything is optional: a hook without an entry gets the server's
/// defaults, no outbound hosts, no config and no secrets.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookEntry {
    /// Event names as in `EventKind::as_str` (`after_register`, ...).
    pub events: Option<Vec<String>>,
    pub fuel: Option<u64>,
    pub memory_mib: Option<u32>,
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    pub order: Option<i32>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secret name (as the hook asks for it) → environment variable holding the value (platform
    /// hooks) or the name of a tenant secret (tenant hooks: never the environment).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Platform hooks only: the tenants whose events it receives (default: every tenant).
    pub tenants: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
}

impl Manifest {
    /// Reads `DIR/hooks.toml`; a missing file means "no settings".
    pub fn read(dir: &Path) -> Result<Self, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        Ok(toml::from_str(text)?)
    }
}

impl HookEntry {
    /// The `events` list as kinds, or every name that is not an event.
    pub fn event_kinds(&self) -> Option<Result<Vec<EventKind>, Vec<String>>> {
        let names = self.events.as_ref()?;
        let mut kinds = Vec::new();
        let mut unknown = Vec::new();
        for name in names {
            match EventKind::parse(name) {
                Some(kind) => kinds.push(kind),
                None => unknown.push(name.clone()),
            }
        }
        Some(if unknown.is_empty() {
            Ok(kinds)
        } else {
            Err(unknown)
        })
    }
}

/// Environment variable names: letters, digits and `_`, not starting with a digit. Anything else
/// is most likely a secret pasted in by mistake, which must not sit in a config file.
pub fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_entry() {
        let m = Manifest::parse(
            r#"
            [hooks.20-welcome]
            events = ["after_register"]
            fuel = 1000
            memory_mib = 8
            timeout_ms = 250
            allowed_hosts = ["127.0.0.1:8025"]
            order = -1
            config = { url = "http://127.0.0.1:8025/send" }
            secrets = { api_key = "MAILER_KEY" }
            "#,
        )
        .unwrap();
        let e = &m.hooks["20-welcome"];
        assert_eq!(e.fuel, Some(1000));
        assert_eq!(
            e.event_kinds().unwrap().unwrap(),
            [EventKind::AfterRegister]
        );
        assert_eq!(e.secrets["api_key"], "MAILER_KEY");
    }

    #[test]
    fn rejects_unknown_keys() {
        let err = Manifest::parse("[hooks.a]\nfeul = 3\n").unwrap_err();
        assert!(err.to_string().contains("feul"), "{err}");
        assert!(Manifest::parse("[hook.a]\n").is_err());
    }

    #[test]
    fn names_unknown_events() {
        let m =
            Manifest::parse("[hooks.a]\nevents = [\"after_login\", \"after_lunch\"]\n").unwrap();
        assert_eq!(
            m.hooks["a"].event_kinds().unwrap().unwrap_err(),
            ["after_lunch"]
        );
    }

    #[test]
    fn env_var_names_are_not_secrets() {
        assert!(is_env_var_name("MAILER_API_KEY"));
        assert!(!is_env_var_name("sk_live=abc/123+"));
        assert!(!is_env_var_name("1ABC"));
        assert!(!is_env_var_name(""));
    }
}
