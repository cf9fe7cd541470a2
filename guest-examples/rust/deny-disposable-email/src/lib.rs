//! A gate that refuses sign-ups from disposable ("throwaway") email addresses.
//!
//! Serves `before-register`: the email's domain, or any parent of it (`x.mailinator.com`
//! matches `mailinator.com`), is looked up in a built-in list of common disposable-address
//! services plus the optional config `extra_domains` (comma-separated). A match is denied with
//! code `disposable_email`. Nothing leaves the component: no HTTP, so the default 50 ms gate
//! budget is plenty.

// generate_all: the world imports 0.1.0's `host` (and its `types`), another package, which
// wit-bindgen generates only when asked. Two versions of `hookauth:hooks` are in play, so the
// modules carry the version: `hookauth::hooks0_1_0`, `exports::hookauth::hooks0_2_0`.
wit_bindgen::generate!({
    world: "gate-hook",
    path: "../../../wit/v0.2.0",
    generate_all,
});

use exports::hookauth::hooks0_2_0::gate::{
    Decision, DecisionPoint, Denial, GateContext, GateRegistration, Grant, Guest, PasswordDecision,
    PasswordReason, PasswordSubject, RegisterDecision,
};
use hookauth::hooks0_1_0::host::config_get;
use hookauth::hooks0_1_0::types::User;

/// Well-known disposable-address services. Not exhaustive: operators add their own with
/// `extra_domains`.
const DISPOSABLE: &[&str] = &[
    "10minutemail.com",
    "10minutemail.net",
    "1secmail.com",
    "1secmail.net",
    "anonbox.net",
    "burnermail.io",
    "deadaddress.com",
    "discard.email",
    "dispostable.com",
    "emailfake.com",
    "emailondeck.com",
    "fakeinbox.com",
    "fakemail.net",
    "getairmail.com",
    "getnada.com",
    "grr.la",
    "guerrillamail.biz",
    "guerrillamail.com",
    "guerrillamail.de",
    "guerrillamail.net",
    "guerrillamail.org",
    "guerrillamailblock.com",
    "harakirimail.com",
    "incognitomail.org",
    "jetable.org",
    "mailcatch.com",
    "maildrop.cc",
    "mailexpire.com",
    "mailforspam.com",
    "mailinator.com",
    "mailinator.net",
    "mailnesia.com",
    "mailpoof.com",
    "mailsac.com",
    "meltmail.com",
    "mintemail.com",
    "moakt.com",
    "mohmal.com",
    "mytemp.email",
    "nada.email",
    "sharklasers.com",
    "spam4.me",
    "spambox.us",
    "spamgourmet.com",
    "temp-mail.io",
    "temp-mail.org",
    "tempinbox.com",
    "tempmail.com",
    "tempmailo.com",
    "tempr.email",
    "throwawaymail.com",
    "tmpmail.net",
    "tmpmail.org",
    "trash-mail.com",
    "trashmail.com",
    "trashmail.net",
    "yopmail.com",
    "yopmail.fr",
    "yopmail.net",
];

struct DenyDisposableEmail;

impl Guest for DenyDisposableEmail {
    fn register() -> GateRegistration {
        GateRegistration {
            points: vec![DecisionPoint::BeforeRegister],
            // `extra_domains` is optional, so it is not listed as required.
            config: vec![],
            secrets: vec![],
        }
    }

    fn before_register(
        email: String,
        _profile: Vec<(String, String)>,
        _context: GateContext,
    ) -> RegisterDecision {
        // The host hands over the address normalised (lower case, IDN as ASCII).
        let Some((_, domain)) = email.rsplit_once('@') else {
            return RegisterDecision::Allow;
        };
        let extra = config_get("extra_domains").unwrap_or_default();
        let extra: Vec<&str> = extra
            .split(',')
            .map(|d| d.trim().trim_start_matches('.'))
            .filter(|d| !d.is_empty())
            .collect();
        let listed =
            |d: &str| DISPOSABLE.contains(&d) || extra.iter().any(|e| e.eq_ignore_ascii_case(d));
        if parents(domain).any(listed) {
            return RegisterDecision::Deny(Denial {
                code: Some("disposable_email".into()),
                message: "Sign-ups from disposable email addresses are not allowed".into(),
            });
        }
        RegisterDecision::Allow
    }

    // Not served: register() lists only before-register, so the host never calls these.

    fn before_login(_user: User, _context: GateContext) -> Decision {
        Decision::Allow
    }

    fn check_password(
        _subject: PasswordSubject,
        _password: String,
        _why: PasswordReason,
        _context: GateContext,
    ) -> PasswordDecision {
        PasswordDecision::Allow
    }

    fn token_claims(
        _user: User,
        _context: GateContext,
        _grant: Grant,
    ) -> Result<Vec<(String, String)>, String> {
        Ok(vec![])
    }
}

/// `a.b.example.com`, `b.example.com`, `example.com`, `com`.
fn parents(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest))
}

export!(DenyDisposableEmail);
