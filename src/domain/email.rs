use std::fmt;

/// A syntactically valid, normalised email address: trimmed, lower case, and its domain in
/// IDNA ASCII form (`user@bücher.de` is stored, compared and shown as `user@xn--bcher-kva.de`),
/// so one mailbox is one account whichever way its domain is typed. The ASCII form is the one
/// mail systems route on and cannot hide a look-alike character in a display.
///
/// Follows what fastapi-fullauth accepts (pydantic `EmailStr`, no deliverability check): one `@`,
/// a dot-atom local part, a multi-label domain that is not a special-use name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Special-use and reserved domains (RFC 6761, RFC 2606 and friends) that no real user has.
const SPECIAL_USE_SUFFIXES: &[&str] = &[
    "arpa",
    "invalid",
    "local",
    "localhost",
    "onion",
    "test",
    "example", // the TLD only; example.com stays valid, as in email-validator
    "internal",
    "alt",
    "home.arpa",
];

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let lowered = raw.trim().to_lowercase();
        let (local, domain) = lowered
            .rsplit_once('@')
            .ok_or("An email address must have an @-sign.")?;
        if domain.is_empty() {
            return Err("There must be something after the @-sign.");
        }
        let domain = ascii_domain(domain)
            .ok_or("The part after the @-sign is not a valid internationalized domain name.")?;
        let normalised = format!("{local}@{domain}");
        if normalised.len() > 254 {
            return Err("The email address is too long.");
        }
        if local.is_empty() {
            return Err("There must be something before the @-sign.");
        }
        if local.len() > 64 {
            return Err("The email address is too long before the @-sign.");
        }
        if !is_dot_atom(local, |c| {
            c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
        }) {
            return Err("The email address contains invalid characters before the @-sign.");
        }
        if domain.is_empty() {
            return Err("There must be something after the @-sign.");
        }
        if !is_dot_atom(&domain, |c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("The part after the @-sign contains invalid characters.");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err("The part after the @-sign is not valid. It should have a period.");
        }
        if labels
            .iter()
            .any(|l| l.starts_with('-') || l.ends_with('-') || l.len() > 63)
        {
            return Err("The part after the @-sign is not valid.");
        }
        let tld = labels[labels.len() - 1];
        if tld.chars().all(|c| c.is_ascii_digit()) {
            return Err(
                "The part after the @-sign is not valid. It is not within a valid top-level domain.",
            );
        }
        if SPECIAL_USE_SUFFIXES
            .iter()
            .any(|s| domain == *s || domain.ends_with(&format!(".{s}")))
        {
            return Err(
                "The part after the @-sign is a special-use or reserved name that cannot be used with email.",
            );
        }
        Ok(Self(normalised))
    }

    /// For login, where the address is only a lookup key (API.md: login takes a plain `str`):
    /// the same normalisation as [`Email::parse`] where it applies, so either form of an
    /// internationalized domain finds the account; anything else is just trimmed and lowered.
    pub fn normalise_lookup_key(raw: &str) -> String {
        let lowered = raw.trim().to_lowercase();
        match lowered.rsplit_once('@') {
            Some((local, domain)) if !domain.is_ascii() => match ascii_domain(domain) {
                Some(domain) => format!("{local}@{domain}"),
                None => lowered,
            },
            _ => lowered,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The IDNA (UTS #46) ASCII form of a domain, lower case; `None` if it has none.
fn ascii_domain(domain: &str) -> Option<String> {
    if domain.is_ascii() {
        // Already ASCII (and lowered): nothing to map, and no `xn--` label is re-validated so
        // that existing ASCII addresses keep parsing exactly as before.
        return Some(domain.to_owned());
    }
    idna::domain_to_ascii(domain).ok().filter(|d| !d.is_empty())
}

fn is_dot_atom(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    s.split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(&allowed))
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn internationalized_domains_are_stored_in_ascii_form() {
        for typed in [
            "user@bücher.de",
            "User@BÜCHER.de",
            "user@xn--bcher-kva.de",
            " user@XN--BCHER-KVA.DE ",
        ] {
            assert_eq!(
                Email::parse(typed).unwrap().as_str(),
                "user@xn--bcher-kva.de",
                "{typed:?}"
            );
            assert_eq!(Email::normalise_lookup_key(typed), "user@xn--bcher-kva.de");
        }
        // The local part is not a domain: it stays as typed (lowered).
        assert_eq!(
            Email::parse("jürgen@example.com").unwrap().as_str(),
            "jürgen@example.com"
        );
        // Full-width dots and letters map (UTS #46) to the same ASCII domain.
        assert_eq!(
            Email::parse("a@ｅｘａｍｐｌｅ．ｃｏｍ").unwrap().as_str(),
            "a@example.com"
        );
        assert!(Email::parse("a@bü_cher.de").is_err());
    }

    #[test]
    fn rejects_malformed_and_special_use_addresses() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "alice@host",
            "alice@foo.test",
            "alice@foo.local",
            "a..b@example.com",
            "alice@-x.com",
            "alice@1.2.3.4",
            "al ice@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn accepts_ordinary_addresses() {
        for good in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "x_y@b-c.io",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?} should be accepted");
        }
    }
}
