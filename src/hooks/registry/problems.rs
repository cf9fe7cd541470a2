//! Everything that can be wrong with a hooks directory, one value per problem, so a failed
//! start lists them all at once, file by file.

use std::fmt;

/// One problem with one file (a hook, or `hooks.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The file's name within the hooks directory.
    pub file: String,
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.kind)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProblemKind {
    #[error("cannot read it: {0}")]
    Unreadable(String),
    #[error("hook file names may only use letters, digits, '.', '_' and '-'")]
    BadName,
    #[error("{0}")]
    NotAComponent(&'static str),
    #[error("does not compile: {0}")]
    Compile(String),
    /// Over the component size or compile-time ceiling.
    #[error("{0}")]
    CompileLimit(crate::hooks::registry::compile::CompileError),
    #[error("targets hookauth:hooks@{found}; this host serves handler@0.1.x and gate@0.2.x")]
    UnsupportedVersion { found: String },
    #[error(
        "does not export hookauth:hooks/handler@0.1.x or hookauth:hooks/gate@0.2.x (build it for \
         the `hook` world of wit/v0.1.0, or `gate-hook` / `hook-and-gate` of wit/v0.2.0)"
    )]
    NoHandler,
    #[error("imports `{import}`, which is not allowed: {reason}")]
    ForbiddenImport { import: String, reason: String },
    #[error("cannot be linked: {0}")]
    Link(String),
    #[error("its register() call failed: {0}")]
    Register(String),
    #[error("{0}")]
    Manifest(String),
    #[error("[hooks.{hook}] matches no {hook}.wasm in the directory")]
    UnknownHook { hook: String },
    #[error("events lists {event}, which is not an event (known: {known})")]
    UnknownEvent { event: String, known: String },
    #[error("events lists {event}, which the hook does not subscribe to")]
    EventNotSubscribed { event: String },
    #[error("the hook needs config `{key}`; add it to [hooks.{hook}.config]")]
    MissingConfig { hook: String, key: String },
    #[error(
        "the hook needs secret `{key}`; add `{key} = \"ENV_VAR_NAME\"` to [hooks.{hook}.secrets]"
    )]
    MissingSecret { hook: String, key: String },
    #[error("secret `{key}` names environment variable {var}, which is not set")]
    SecretUnset { key: String, var: String },
    #[error("secret `{key}` names tenant secret {name}, which is not set")]
    TenantSecretUnset { key: String, name: String },
    #[error("secret `{key}` must name an environment variable, not hold a value")]
    SecretNotAVariable { key: String },
    #[error("secret `{key}` names environment variable {var}, which hooks may not read: {reason}")]
    SecretVariableRefused {
        key: String,
        var: String,
        reason: String,
    },
}

/// Renders problems as the list an operator reads when the server refuses to start.
pub(crate) fn render(problems: &[Problem]) -> String {
    let mut out = format!(
        "{} problem{} with the hooks:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  - ");
        out.push_str(&p.to_string());
    }
    out
}
