//! A gate that refuses passwords known from data breaches, by k-anonymity: the password's
//! SHA-1 is computed here and only its first 5 hex characters leave the component.
//!
//! Serves `check-password` (register, change, reset): `GET {url}/range/{PREFIX}` answers the
//! suffixes of every breached hash with that prefix, one `SUFFIX:COUNT` a line (the
//! api.pwnedpasswords.com protocol); the password is denied when its suffix is listed with a
//! count of at least 1 (padding lines have count 0).
//!
//! Fails open on the API: when it cannot be reached or answers non-2xx, the password is allowed
//! and a warning logged, so an outage of a third party does not stop sign-ups. A trap or a
//! timeout of the hook itself is the server's `on_error` (hooks.toml) to decide.
//!
//! Config (hooks.toml): `url` (required, e.g. `https://api.pwnedpasswords.com`); the API's host
//! must be in `allowed_hosts`.

// generate_all: the world imports 0.1.0's `host` (and its `types`), another package, which
// wit-bindgen generates only when asked. Two versions of `hookauth:hooks` are in play, so the
// modules carry the version: `hookauth::hooks0_1_0`, `exports::hookauth::hooks0_2_0`.
wit_bindgen::generate!({
    world: "gate-hook",
    path: "../../../wit/v0.2.0",
    generate_all,
});

mod http;

use exports::hookauth::hooks0_2_0::gate::{
    Decision, DecisionPoint, GateContext, GateRegistration, Grant, Guest, PasswordDecision,
    PasswordReason, PasswordSubject, RegisterDecision,
};
use hookauth::hooks0_1_0::host::{Level, config_get, log};
use hookauth::hooks0_1_0::types::User;
use sha1::{Digest, Sha1};

struct BreachedPassword;

impl Guest for BreachedPassword {
    fn register() -> GateRegistration {
        GateRegistration {
            points: vec![DecisionPoint::CheckPassword],
            config: vec!["url".into()],
            secrets: vec![],
        }
    }

    fn check_password(
        _subject: PasswordSubject,
        password: String,
        _why: PasswordReason,
        _context: GateContext,
    ) -> PasswordDecision {
        let hash = hex_upper(&Sha1::digest(password.as_bytes()));
        let (prefix, suffix) = hash.split_at(5);
        match times_breached(prefix, suffix) {
            Ok(0) => PasswordDecision::Allow,
            Ok(_) => PasswordDecision::Deny(
                "This password has appeared in a data breach; choose another".into(),
            ),
            Err(reason) => {
                // Never the password nor its hash: the reason names the prefix at most, which
                // the API saw anyway. The host attaches the decision's id to the line.
                log(
                    Level::Warn,
                    "breached-password: range API unavailable, password allowed",
                    &[("reason".into(), reason)],
                );
                PasswordDecision::Allow
            }
        }
    }

    // Not served: register() lists only check-password, so the host never calls these.

    fn before_register(
        _email: String,
        _profile: Vec<(String, String)>,
        _context: GateContext,
    ) -> RegisterDecision {
        RegisterDecision::Allow
    }

    fn before_login(_user: User, _context: GateContext) -> Decision {
        Decision::Allow
    }

    fn token_claims(
        _user: User,
        _context: GateContext,
        _grant: Grant,
    ) -> Result<Vec<(String, String)>, String> {
        Ok(vec![])
    }
}

/// How often the range API has seen the hash `prefix` + `suffix` (0: never).
fn times_breached(prefix: &str, suffix: &str) -> Result<u64, String> {
    let base = config_get("url").ok_or("config `url` is not set")?;
    let url = format!("{}/range/{prefix}", base.trim_end_matches('/'));
    // Add-Padding: the API pads its answer with count-0 lines, so the response size does not
    // tell an observer which prefix was asked.
    let (status, body) = http::get(&url, &[("add-padding", "true")])?;
    if !(200..300).contains(&status) {
        return Err(format!("GET {url} answered {status}"));
    }
    let body = String::from_utf8(body).map_err(|_| format!("GET {url}: the body is not UTF-8"))?;
    Ok(body
        .lines()
        .filter_map(|line| line.trim().split_once(':'))
        .find(|(listed, _)| listed.eq_ignore_ascii_case(suffix))
        .and_then(|(_, count)| count.trim().parse().ok())
        .unwrap_or(0))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

export!(BreachedPassword);
