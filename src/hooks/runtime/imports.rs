//! Which imports a hook component may have. Deny by default: an import not listed here is
//! rejected at load time with a message naming it, before the hook can ever run.
//!
//! Allowed are hookauth's own host interface (0.1.x), and the WASI 0.2 interfaces that either
//! grant what hooks.toml can grant (outbound HTTP) or grant nothing with the context the host
//! builds (no preopens, no environment, closed stdin, no socket address and no name lookup).
//! Those inert ones are linked because every guest toolchain imports some of them whether it
//! uses them or not (Rust std imports `wasi:cli/environment`; the C adapter and the JS engines
//! import `wasi:filesystem`; CPython, as built by componentize-py, imports `wasi:sockets`).

/// The WIT package version this host serves (`wit/v0.1.0`), as a semver-compatible prefix.
pub const HOOKAUTH_VERSION_PREFIX: &str = "0.1.";
/// The WASI version the linker provides (wasmtime-wasi 48 implements 0.2.12; any 0.2.x links).
pub const WASI_VERSION_PREFIX: &str = "0.2.";

/// Interfaces a hook may import, without their version, and why each is harmless.
const ALLOWED: &[(&str, &str)] = &[
    ("hookauth:hooks/host", "logging, config and secrets"),
    ("hookauth:hooks/types", "type definitions only"),
    ("wasi:http/types", "outbound HTTP, limited to allowed_hosts"),
    (
        "wasi:http/outgoing-handler",
        "outbound HTTP, limited to allowed_hosts",
    ),
    ("wasi:io/error", "streams"),
    ("wasi:io/poll", "streams"),
    ("wasi:io/streams", "streams"),
    ("wasi:clocks/monotonic-clock", "clocks"),
    ("wasi:clocks/wall-clock", "clocks"),
    ("wasi:random/random", "random numbers"),
    ("wasi:random/insecure", "random numbers"),
    ("wasi:random/insecure-seed", "random numbers"),
    ("wasi:cli/stdout", "captured into the server log, capped"),
    ("wasi:cli/stderr", "captured into the server log, capped"),
    ("wasi:cli/stdin", "always closed"),
    ("wasi:cli/environment", "always empty"),
    ("wasi:cli/exit", "ends the invocation"),
    ("wasi:cli/terminal-input", "never a terminal"),
    ("wasi:cli/terminal-output", "never a terminal"),
    ("wasi:cli/terminal-stdin", "never a terminal"),
    ("wasi:cli/terminal-stdout", "never a terminal"),
    ("wasi:cli/terminal-stderr", "never a terminal"),
    (
        "wasi:filesystem/types",
        "no directory is ever opened to a hook",
    ),
    (
        "wasi:filesystem/preopens",
        "no directory is ever opened to a hook",
    ),
    // Raw sockets would bypass allowed_hosts, so HookState's WasiCtx refuses them all; outbound
    // traffic is wasi:http only.
    ("wasi:sockets/network", "inert: every address is refused"),
    (
        "wasi:sockets/instance-network",
        "inert: every address is refused",
    ),
    ("wasi:sockets/tcp", "inert: every address is refused"),
    (
        "wasi:sockets/tcp-create-socket",
        "inert: every address is refused",
    ),
    ("wasi:sockets/udp", "inert: every address is refused"),
    (
        "wasi:sockets/udp-create-socket",
        "inert: every address is refused",
    ),
    (
        "wasi:sockets/ip-name-lookup",
        "inert: every name lookup is refused",
    ),
];

/// Why an import is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportRefusal {
    /// An interface hooks may not use at all.
    NotOffered { hint: &'static str },
    /// A known interface at a version this host does not serve.
    UnsupportedVersion { supported: String },
}

impl std::fmt::Display for ImportRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportRefusal::NotOffered { hint } => f.write_str(hint),
            ImportRefusal::UnsupportedVersion { supported } => {
                write!(f, "this host serves version {supported}")
            }
        }
    }
}

/// Checks one import name (`wasi:cli/stdout@0.2.6`).
pub fn check_import(name: &str) -> Result<(), ImportRefusal> {
    let (interface, version) = match name.split_once('@') {
        Some((i, v)) => (i, Some(v)),
        None => (name, None),
    };
    if !ALLOWED.iter().any(|(allowed, _)| *allowed == interface) {
        let hint = if interface.starts_with("wasi:http/") {
            "hooks may only make outbound HTTP requests (wasi:http/outgoing-handler)"
        } else {
            "hooks may import only hookauth:hooks/host@0.1.x and the WASI 0.2 interfaces \
             listed in wit/README.md"
        };
        return Err(ImportRefusal::NotOffered { hint });
    }
    let prefix = if interface.starts_with("hookauth:") {
        HOOKAUTH_VERSION_PREFIX
    } else {
        WASI_VERSION_PREFIX
    };
    match version {
        Some(v) if v.starts_with(prefix) => Ok(()),
        _ => Err(ImportRefusal::UnsupportedVersion {
            supported: format!("{prefix}x"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_what_rust_guests_import() {
        for name in [
            "hookauth:hooks/host@0.1.0",
            "wasi:cli/environment@0.2.6",
            "wasi:io/streams@0.2.12",
            "wasi:http/outgoing-handler@0.2.0",
        ] {
            assert_eq!(check_import(name), Ok(()), "{name}");
        }
    }

    /// What componentize-py 0.25.1's CPython imports without `--stub-wasi`.
    #[test]
    fn allows_the_sockets_cpython_imports_as_inert() {
        for name in [
            "wasi:sockets/network@0.2.9",
            "wasi:sockets/instance-network@0.2.9",
            "wasi:sockets/tcp@0.2.9",
            "wasi:sockets/tcp-create-socket@0.2.9",
            "wasi:sockets/udp@0.2.9",
            "wasi:sockets/udp-create-socket@0.2.9",
            "wasi:sockets/ip-name-lookup@0.2.9",
        ] {
            assert_eq!(check_import(name), Ok(()), "{name}");
        }
        for (interface, why) in ALLOWED {
            if interface.starts_with("wasi:sockets/") {
                assert!(why.starts_with("inert: every"), "{interface}: {why}");
            }
        }
    }

    #[test]
    fn refuses_unknown_interfaces_and_versions() {
        assert!(matches!(
            check_import("wasi:http/incoming-handler@0.2.0"),
            Err(ImportRefusal::NotOffered { hint }) if hint.contains("outbound HTTP")
        ));
        assert!(matches!(
            check_import("wasi:sockets/tcp@0.3.0"),
            Err(ImportRefusal::UnsupportedVersion { .. })
        ));
        assert!(check_import("wasi:sockets/tcp").is_err());
        assert!(check_import("evil:host/exec@1.0.0").is_err());
        assert!(matches!(
            check_import("hookauth:hooks/host@0.2.0"),
            Err(ImportRefusal::UnsupportedVersion { .. })
        ));
        assert!(check_import("wasi:cli/stdout").is_err());
        assert!(check_import("wasi:cli/stdout@0.3.0").is_err());
    }
}
