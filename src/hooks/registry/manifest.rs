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
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Deserialize;

use crate::domain::EventKind;

/// The file name the loader looks for in the hooks directory.
pub const MANIFEST_FILE: &str = "hooks.toml";

/// Largest hooks.toml read. An annotated one for dozens of hooks is a few KiB; without a cap a
/// hooks-directory writer could make the server read gigabytes (or `/dev/zero`) at start.
pub const MAX_MANIFEST_FILE_BYTES: u64 = 1 << 20;

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
    /// Gates: what a trap, timeout or bad answer means (`deny`, the default, or `allow`).
    pub on_error: Option<crate::domain::OnError>,
    /// Gates: wall clock per decision (default `[hooks] gate_timeout_ms`, 50).
    pub gate_timeout_ms: Option<u64>,
    /// Gates: fuel per decision (default `[hooks] gate_fuel`).
    pub gate_fuel: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    #[error("it is larger than {} KiB", MAX_MANIFEST_FILE_BYTES >> 10)]
    TooLarge,
    #[error("it is not valid UTF-8")]
    NotUtf8,
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
}

impl Manifest {
    /// Reads `DIR/hooks.toml`; a missing file means "no settings".
    pub fn read(dir: &Path) -> Result<Self, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        match read_regular_file(&path, MAX_MANIFEST_FILE_BYTES) {
            Ok(Some(bytes)) => {
                Self::parse(std::str::from_utf8(&bytes).map_err(|_| ManifestError::NotUtf8)?)
            }
            Ok(None) => Err(ManifestError::TooLarge),
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

/// Reads a file of the hooks directory: `Ok(None)` when it is over `max` bytes. Only a regular
/// file (a symlink to one is followed) is read; a FIFO, device or directory planted under the
/// name is refused without blocking or reading forever.
pub fn read_regular_file(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Opening a FIFO for reading would otherwise wait for a writer.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > max {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    // It grew while being read.
    if bytes.len() as u64 > max {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// The server's own environment variables (`HOOKAUTH_SECRET_KEY`, `HOOKAUTH_DATABASE_URL`, ...)
/// start with this: never a hook's secret, whatever `secret_env_allow` says. Compared without
/// regard to case.
pub const RESERVED_ENV_PREFIX: &str = "HOOKAUTH_";

/// `[hooks] secret_env_allow` by default: any variable not under [`RESERVED_ENV_PREFIX`].
pub const DEFAULT_SECRET_ENV_ALLOW: &[&str] = &["*"];

/// Whether hooks.toml may name `var` as a secret; `Err` says why not.
pub fn check_secret_env(var: &str, allow: &[String]) -> Result<(), String> {
    if var
        .get(..RESERVED_ENV_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_ENV_PREFIX))
    {
        return Err(format!(
            "variables starting with {RESERVED_ENV_PREFIX} configure the server itself"
        ));
    }
    if allow.iter().any(|pattern| glob_match(pattern, var)) {
        Ok(())
    } else {
        Err(format!(
            "it matches none of [hooks] secret_env_allow = {allow:?}"
        ))
    }
}

/// A `secret_env_allow` pattern: an environment variable name in which `*` may stand for any
/// run of characters.
pub fn valid_env_pattern(pattern: &str) -> bool {
    !pattern.is_empty()
        && pattern
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*')
}

/// `*` matches any run of characters (none included); everything else matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole name.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
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
    fn the_servers_own_variables_are_never_hook_secrets() {
        let any = vec!["*".to_owned()];
        for var in [
            "HOOKAUTH_SECRET_KEY",
            "HOOKAUTH_DATABASE_URL",
            "hookauth_secret_key",
        ] {
            assert!(check_secret_env(var, &any).is_err(), "{var}");
            assert!(
                check_secret_env(var, &["HOOKAUTH_*".to_owned()]).is_err(),
                "{var}"
            );
        }
        assert!(check_secret_env("MAILER_KEY", &any).is_ok());
        assert!(check_secret_env("HOOKAUTHX", &any).is_ok());
    }

    #[test]
    fn allow_patterns_match_whole_names() {
        let allow = |p: &str, v: &str| check_secret_env(v, &[p.to_owned()]).is_ok();
        assert!(allow("HOOK_*", "HOOK_MAILER"));
        assert!(allow("HOOK_*", "HOOK_"));
        assert!(!allow("HOOK_*", "XHOOK_MAILER"));
        assert!(!allow("HOOK_*", "DATABASE_URL"));
        assert!(allow("MAILER_KEY", "MAILER_KEY"));
        assert!(!allow("MAILER_KEY", "MAILER_KEY2"));
        assert!(allow("*_KEY", "MAILER_KEY"));
        assert!(!allow("*_KEY", "MAILER_KEYS"));
        assert!(allow("A*B*C", "AxxBxxC"));
        assert!(!allow("A*B*C", "AxxCxxB"));
        assert!(!allow("AB*BA", "ABA"));
        assert!(check_secret_env("ANY", &[]).is_err());
        assert!(valid_env_pattern("HOOK_*"));
        assert!(!valid_env_pattern("HOOK-*"));
        assert!(!valid_env_pattern(""));
    }

    #[test]
    fn env_var_names_are_not_secrets() {
        assert!(is_env_var_name("MAILER_API_KEY"));
        assert!(!is_env_var_name("sk_live=abc/123+"));
        assert!(!is_env_var_name("1ABC"));
        assert!(!is_env_var_name(""));
    }
}
