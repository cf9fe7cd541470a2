use std::fmt;
use std::sync::LazyLock;

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

/// One broken rule. `code` is a stable machine-readable identifier that clients may
/// switch on; `message` is for humans and may be reworded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyViolation {
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The messages joined by `"; "`, which is the peer's format for an error's `detail`.
pub fn describe(violations: &[PolicyViolation]) -> String {
    violations
        .iter()
        .map(|v| v.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Rules applied on register, change-password and reset-confirm. Every rule can be
/// switched off on its own so operators can match whatever their users already expect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in code points.
    pub min_length: usize,
    /// Maximum length in code points; 0 = no cap.
    pub max_length: usize,
    /// At least one char with `char::is_lowercase` (Unicode-aware: "é" counts).
    pub require_lowercase: bool,
    /// At least one char with `char::is_uppercase` (Unicode-aware: "É" counts).
    pub require_uppercase: bool,
    /// At least one char with `char::is_numeric`, so non-Latin digits such as "٣" count
    /// too; this keeps the digit and symbol classes consistent with `is_alphanumeric`.
    pub require_digit: bool,
    /// At least one char that is neither alphanumeric nor whitespace.
    pub require_symbol: bool,
    /// Refuse passwords containing the email's local part (with and without `+tag`),
    /// case-insensitively, when that part is at least 3 characters long.
    pub forbid_email_local_part: bool,
    /// Refuse passwords on the bundled common-passwords list.
    pub forbid_common: bool,
}

impl Default for PasswordPolicy {
    /// Length and the two "guessable" rules only: NIST SP 800-63B advises against
    /// composition rules, so those are opt-in.
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 4096,
            require_lowercase: false,
            require_uppercase: false,
            require_digit: false,
            require_symbol: false,
            forbid_email_local_part: true,
            forbid_common: true,
        }
    }
}

pub const CODE_TOO_SHORT: &str = "password_too_short";
pub const CODE_TOO_LONG: &str = "password_too_long";
pub const CODE_NEEDS_LOWERCASE: &str = "password_needs_lowercase";
pub const CODE_NEEDS_UPPERCASE: &str = "password_needs_uppercase";
pub const CODE_NEEDS_DIGIT: &str = "password_needs_digit";
pub const CODE_NEEDS_SYMBOL: &str = "password_needs_symbol";
pub const CODE_CONTAINS_EMAIL: &str = "password_contains_email";
pub const CODE_TOO_COMMON: &str = "password_too_common";

/// Shorter local parts would forbid far too much ("a@x.com" would ban every "a").
const MIN_EMAIL_LOCAL_CHARS: usize = 3;

impl PasswordPolicy {
    /// Every rule the password breaks, in a fixed order: length, character classes,
    /// email, common list. `email` is the account's address when known.
    ///
    /// Cost: one pass over the password counts code points and records the character
    /// classes. An over-long password stops there (it is rejected anyway), so a huge
    /// input never reaches the case-folding email and list checks.
    pub fn check(
        &self,
        password: &Password,
        email: Option<&str>,
    ) -> Result<(), Vec<PolicyViolation>> {
        let raw = password.expose();
        let mut len = 0usize;
        let (mut lower, mut upper, mut digit, mut symbol) = (false, false, false, false);
        for c in raw.chars() {
            len += 1;
            lower |= c.is_lowercase();
            upper |= c.is_uppercase();
            digit |= c.is_numeric();
            symbol |= !c.is_alphanumeric() && !c.is_whitespace();
        }
        let too_long = self.max_length > 0 && len > self.max_length;

        let mut out = Vec::new();
        let mut push = |code, message: String| out.push(PolicyViolation { code, message });
        if len < self.min_length {
            push(
                CODE_TOO_SHORT,
                format!("Password must be at least {} characters", self.min_length),
            );
        }
        if too_long {
            push(
                CODE_TOO_LONG,
                format!("Password must be at most {} characters", self.max_length),
            );
        }
        let classes = [
            (
                self.require_lowercase,
                lower,
                CODE_NEEDS_LOWERCASE,
                "lowercase letter",
            ),
            (
                self.require_uppercase,
                upper,
                CODE_NEEDS_UPPERCASE,
                "uppercase letter",
            ),
            (self.require_digit, digit, CODE_NEEDS_DIGIT, "digit"),
            (self.require_symbol, symbol, CODE_NEEDS_SYMBOL, "symbol"),
        ];
        for (required, present, code, what) in classes {
            if required && !present {
                push(code, format!("Password must contain at least one {what}"));
            }
        }
        if !too_long {
            if self.forbid_email_local_part
                && email.is_some_and(|e| contains_email_local_part(raw, e))
            {
                push(
                    CODE_CONTAINS_EMAIL,
                    "Password must not contain the email address's name".to_owned(),
                );
            }
            if self.forbid_common && is_common(raw) {
                push(CODE_TOO_COMMON, "This password is too common".to_owned());
            }
        }

        if out.is_empty() { Ok(()) } else { Err(out) }
    }

    /// Login refuses over-long passwords before hashing so nobody can make us hash megabytes.
    pub fn too_long_to_hash(&self, password: &Password) -> bool {
        self.max_length > 0 && password.char_len() > self.max_length
    }
}

/// Per-char lowercase, not `str::to_lowercase`: the latter maps a final "Σ" by context,
/// which would make a substring fold differently from the whole it came from.
fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Whether `password` contains the local part of `email` (the part before the last
/// `@`, since the domain cannot contain one), or that part with its `+tag` removed.
/// Without an `@` the whole string is treated as the local part.
fn contains_email_local_part(password: &str, email: &str) -> bool {
    let local = email
        .rsplit_once('@')
        .map_or(email, |(local, _)| local)
        .trim();
    let untagged = local.split_once('+').map_or(local, |(base, _)| base);
    let candidates = [local, untagged]
        .into_iter()
        .filter(|part| part.chars().count() >= MIN_EMAIL_LOCAL_CHARS)
        .collect::<Vec<_>>();
    if candidates.is_empty() {
        return false;
    }
    let password = fold(password);
    candidates
        .into_iter()
        .any(|part| password.contains(fold(part).as_str()))
}

/// Common passwords, from Django 5.2.20 (`django/contrib/auth/common-passwords.txt.gz` in
/// the PyPI wheel, gz sha256 3c1baed62596de36860824eb3f436d5932d37ca8b06e59df78f5a44ec175afe4).
/// The list was compiled by Royce Williams
/// (https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce). Django
/// describes it as 20,000 passwords; once lowercased and deduplicated it has 19,640 lines.
/// It is shipped uncompressed and sorted by byte order, one per line.
/// Licence: BSD-3-Clause, Copyright (c) Django Software Foundation and individual
/// contributors. All rights reserved. The full text is at
/// https://github.com/django/django/blob/main/LICENSE. Binary redistributions must
/// reproduce that notice in their documentation.
const COMMON_PASSWORDS_TXT: &str = include_str!("common-passwords.txt");

/// Longest password (trimmed, in code points) that is looked up at all. The longest
/// entry in the list is 33 code points (a test checks every entry fits), so anything
/// longer cannot match and skips the lookup.
const COMMON_MAX_CHARS: usize = 64;

/// Room for `COMMON_MAX_CHARS` chars after lowercasing: a char's lowercase mapping is at
/// most 3 chars of at most 4 bytes each.
const FOLD_BUF_BYTES: usize = COMMON_MAX_CHARS * 3 * 4;

/// Sorted and deduplicated once on first use (the file already is, but a hand edit
/// must not break the binary search); lookups then allocate nothing.
static COMMON_PASSWORDS: LazyLock<Box<[&'static str]>> = LazyLock::new(|| {
    let mut list: Vec<&'static str> = COMMON_PASSWORDS_TXT
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    list.sort_unstable();
    list.dedup();
    list.into_boxed_slice()
});

/// Compared like Django does: trimmed and lowercased. The lowercase form is built in a
/// stack buffer so a check never allocates.
fn is_common(password: &str) -> bool {
    let trimmed = password.trim();
    // Bounded count: never walks more than COMMON_MAX_CHARS + 1 chars.
    if trimmed.chars().take(COMMON_MAX_CHARS + 1).count() > COMMON_MAX_CHARS {
        return false;
    }
    let mut buf = [0u8; FOLD_BUF_BYTES];
    let mut used = 0;
    for c in trimmed.chars().flat_map(char::to_lowercase) {
        let end = used + c.len_utf8();
        let Some(slot) = buf.get_mut(used..end) else {
            return false;
        };
        c.encode_utf8(slot);
        used = end;
    }
    let Some(Ok(folded)) = buf.get(..used).map(std::str::from_utf8) else {
        return false;
    };
    COMMON_PASSWORDS.binary_search(&folded).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::new(s.to_owned())
    }

    /// Everything off, so each test switches on only the rule it is about.
    fn bare() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 0,
            max_length: 0,
            require_lowercase: false,
            require_uppercase: false,
            require_digit: false,
            require_symbol: false,
            forbid_email_local_part: false,
            forbid_common: false,
        }
    }

    fn codes(policy: &PasswordPolicy, password: &str, email: Option<&str>) -> Vec<&'static str> {
        match policy.check(&pw(password), email) {
            Ok(()) => Vec::new(),
            Err(v) => v.into_iter().map(|v| v.code).collect(),
        }
    }

    #[test]
    fn policy_counts_code_points_and_reports_each_problem() {
        let policy = PasswordPolicy {
            min_length: 8,
            max_length: 10,
            ..PasswordPolicy::default()
        };
        assert!(policy.check(&pw("ééééééééé"), None).is_ok());
        assert_eq!(
            describe(&policy.check(&pw("short"), None).unwrap_err()),
            "Password must be at least 8 characters"
        );
        assert_eq!(
            describe(
                &policy
                    .check(&Password::new("x".repeat(11)), None)
                    .unwrap_err()
            ),
            "Password must be at most 10 characters"
        );
    }

    #[test]
    fn default_policy() {
        let d = PasswordPolicy::default();
        assert_eq!((d.min_length, d.max_length), (8, 4096));
        assert!(!d.require_lowercase && !d.require_uppercase);
        assert!(!d.require_digit && !d.require_symbol);
        assert!(d.forbid_email_local_part && d.forbid_common);
        assert!(d.check(&pw("correct horse battery"), None).is_ok());
    }

    #[test]
    fn length_rules_on_and_off() {
        let mut p = bare();
        assert!(codes(&p, "", None).is_empty());
        assert!(codes(&p, &"x".repeat(100_000), None).is_empty());
        p.min_length = 3;
        assert_eq!(codes(&p, "ab", None), ["password_too_short"]);
        assert!(codes(&p, "abc", None).is_empty());
        p.max_length = 4;
        assert_eq!(codes(&p, "abcde", None), ["password_too_long"]);
        assert!(codes(&p, "abcd", None).is_empty());
        // Four code points, eight bytes.
        assert!(codes(&p, "éééé", None).is_empty());
    }

    #[test]
    fn too_long_to_hash_is_unchanged() {
        let mut p = bare();
        assert!(!p.too_long_to_hash(&Password::new("x".repeat(10_000))));
        p.max_length = 5;
        assert!(p.too_long_to_hash(&pw("ééééééé")));
        assert!(!p.too_long_to_hash(&pw("ééééé")));
    }

    #[test]
    fn class_rules_on_and_off() {
        let mut p = bare();
        assert!(codes(&p, "        ", None).is_empty());
        p.require_lowercase = true;
        assert_eq!(codes(&p, "ABC123", None), ["password_needs_lowercase"]);
        assert!(codes(&p, "ABCd", None).is_empty());
        p = bare();
        p.require_uppercase = true;
        assert_eq!(codes(&p, "abc123", None), ["password_needs_uppercase"]);
        assert!(codes(&p, "abcD", None).is_empty());
        p = bare();
        p.require_digit = true;
        assert_eq!(codes(&p, "abcdef", None), ["password_needs_digit"]);
        assert!(codes(&p, "abc1", None).is_empty());
        p = bare();
        p.require_symbol = true;
        assert_eq!(codes(&p, "abc 123", None), ["password_needs_symbol"]);
        assert!(codes(&p, "abc-123", None).is_empty());
    }

    #[test]
    fn class_rules_are_unicode_aware() {
        let p = PasswordPolicy {
            require_lowercase: true,
            require_uppercase: true,
            require_digit: true,
            require_symbol: true,
            ..bare()
        };
        assert_eq!(
            codes(&p, "ÉCOLE", None),
            [
                "password_needs_lowercase",
                "password_needs_digit",
                "password_needs_symbol"
            ]
        );
        assert_eq!(codes(&p, "école", None)[0], "password_needs_uppercase");
        // Arabic-Indic three is a digit; a CJK ideograph is alphanumeric, not a symbol;
        // "€" and an emoji are symbols; a no-break space is whitespace, not a symbol.
        assert!(codes(&p, "Éa٣€", None).is_empty());
        assert!(codes(&p, "Éa1😀", None).is_empty());
        assert_eq!(codes(&p, "Éa1漢", None), ["password_needs_symbol"]);
        assert_eq!(codes(&p, "Éa1\u{a0}", None), ["password_needs_symbol"]);
    }

    #[test]
    fn email_rule_on_and_off() {
        let mut p = bare();
        let email = Some("John.Doe@example.com");
        assert!(codes(&p, "xxjohn.doexx", email).is_empty());
        p.forbid_email_local_part = true;
        assert_eq!(
            codes(&p, "xxJOHN.DOExx", email),
            ["password_contains_email"]
        );
        assert!(codes(&p, "john doe", email).is_empty());
        // The domain is not the "name".
        assert!(codes(&p, "example.com", email).is_empty());
        // No email known: nothing to compare against.
        assert!(codes(&p, "john.doe", None).is_empty());
    }

    #[test]
    fn email_rule_strips_plus_tag() {
        let p = PasswordPolicy {
            forbid_email_local_part: true,
            ..bare()
        };
        let email = Some("alice+shop@example.com");
        assert_eq!(codes(&p, "ALICE2024", email), ["password_contains_email"]);
        assert_eq!(codes(&p, "alice+shop!", email), ["password_contains_email"]);
        assert!(codes(&p, "shop2024", email).is_empty());
        // A short base with a long enough tagged form: only the full local part counts.
        let email = Some("al+shop@example.com");
        assert!(codes(&p, "always", email).is_empty());
        assert_eq!(codes(&p, "xal+shopx", email), ["password_contains_email"]);
    }

    #[test]
    fn email_rule_ignores_short_local_parts() {
        let p = PasswordPolicy {
            forbid_email_local_part: true,
            ..bare()
        };
        assert!(codes(&p, "banana", Some("a@x.com")).is_empty());
        assert!(codes(&p, "abba", Some("ab@x.com")).is_empty());
        assert_eq!(
            codes(&p, "xabcx", Some("abc@x.com")),
            ["password_contains_email"]
        );
        // Three code points, six bytes: counted in chars.
        assert_eq!(
            codes(&p, "ÉÉÉ!", Some("ééé@x.com")),
            ["password_contains_email"]
        );
        assert!(codes(&p, "anything", Some("@x.com")).is_empty());
        assert!(codes(&p, "anything", Some("+tag@x.com")).is_empty());
        assert!(codes(&p, "anything", Some("")).is_empty());
    }

    #[test]
    fn common_rule_on_and_off() {
        let mut p = bare();
        assert!(codes(&p, "password", None).is_empty());
        p.forbid_common = true;
        for common in [
            "password",
            "123456",
            "qwerty",
            "PassWord",
            "  QWERTY \t",
            "пароль",
        ] {
            assert_eq!(codes(&p, common, None), ["password_too_common"], "{common}");
        }
        // Internal whitespace is significant, as in Django.
        assert_eq!(codes(&p, "Friend of Emily", None), ["password_too_common"]);
        assert!(codes(&p, "friendofemily", None).is_empty());
        assert!(codes(&p, "correct horse battery staple", None).is_empty());
        assert!(codes(&p, &"a".repeat(65), None).is_empty());
        assert!(codes(&p, "", None).is_empty());
    }

    #[test]
    fn common_list_is_big_sorted_lowercase_and_short() {
        let lines: Vec<&str> = COMMON_PASSWORDS_TXT.lines().collect();
        assert!(lines.len() >= 19_000, "{}", lines.len());
        assert_eq!(COMMON_PASSWORDS.len(), lines.len());
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        for line in &lines {
            assert!(!line.is_empty() && line.trim() == *line, "{line:?}");
            assert_eq!(fold(line), *line, "lowercase");
            assert!(line.chars().count() <= COMMON_MAX_CHARS, "{line:?}");
            assert!(is_common(line), "{line:?}");
        }
        let longest = lines.iter().map(|l| l.chars().count()).max();
        assert_eq!(longest, Some(33));
    }

    #[test]
    fn violations_come_in_fixed_order_with_stable_codes() {
        let p = PasswordPolicy {
            min_length: 12,
            require_lowercase: true,
            require_uppercase: true,
            require_digit: true,
            require_symbol: true,
            forbid_email_local_part: true,
            forbid_common: true,
            ..PasswordPolicy::default()
        };
        let violations = p
            .check(&pw("password"), Some("password@x.com"))
            .unwrap_err();
        let got: Vec<_> = violations.iter().map(|v| v.code).collect();
        assert_eq!(
            got,
            [
                "password_too_short",
                "password_needs_uppercase",
                "password_needs_digit",
                "password_needs_symbol",
                "password_contains_email",
                "password_too_common",
            ]
        );
        assert_eq!(
            describe(&violations),
            "Password must be at least 12 characters; \
             Password must contain at least one uppercase letter; \
             Password must contain at least one digit; \
             Password must contain at least one symbol; \
             Password must not contain the email address's name; \
             This password is too common"
        );
        let violations = p.check(&pw("PASSWORD"), None).unwrap_err();
        assert_eq!(violations[1].code, "password_needs_lowercase");
        assert_eq!(
            violations[1].message,
            "Password must contain at least one lowercase letter"
        );
        let p = PasswordPolicy {
            max_length: 64,
            ..bare()
        };
        let violations = p.check(&Password::new("x".repeat(65)), None).unwrap_err();
        assert_eq!(violations[0].code, "password_too_long");
        assert_eq!(
            violations[0].message,
            "Password must be at most 64 characters"
        );
        assert_eq!(violations[0].to_string(), violations[0].message);
    }

    #[test]
    fn over_long_passwords_skip_the_costly_rules() {
        let p = PasswordPolicy {
            max_length: 4,
            ..PasswordPolicy::default()
        };
        // Would be "too common" and "contains email" if it were within the cap.
        assert_eq!(
            codes(&p, "password", Some("password@x.com")),
            ["password_too_long"]
        );
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let p = PasswordPolicy {
            require_lowercase: true,
            require_uppercase: true,
            require_digit: true,
            require_symbol: true,
            max_length: 0,
            ..PasswordPolicy::default()
        };
        // "İ" lowercases to two chars; the fold buffer must still have room.
        let inputs = [
            String::new(),
            "\u{0}".to_owned(),
            "İ".repeat(64),
            "ﬃ".repeat(64),
            " ".repeat(10_000),
            "@@@".to_owned(),
            "x".repeat(1 << 20),
        ];
        for input in &inputs {
            for email in [None, Some(""), Some("@"), Some("a@b@c"), Some("İİİ@x")] {
                let _ = p.check(&Password::new(input.clone()), email);
            }
        }
        assert_eq!(
            codes(&p, "i\u{307}i\u{307}i\u{307}Aa1!", Some("İİİ@x")),
            ["password_contains_email"]
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        assert!(!format!("{:?}", Password::new("hunter22".into())).contains("hunter"));
    }
}
