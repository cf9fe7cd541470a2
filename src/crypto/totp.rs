//! TOTP second factor (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits) and recovery codes, the
//! way fastapi-fullauth does them, so that secrets and recovery-code digests imported from it
//! keep working and every authenticator app reads the enrolment QR code.
//!
//! This module only computes and compares. The replay rule belongs to the caller, because it
//! needs storage: a code stays valid for its whole step (and the drift window), so whoever reads
//! it over the user's shoulder could use it again. The caller records the step that
//! [`matching_step`] returns and refuses any step less than or equal to the recorded one, in one
//! atomic update (compare-and-set), so two concurrent uses of the same code cannot both pass.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const STEP_SECONDS: u64 = 30;
/// One step either side of now, the window RFC 6238 suggests: a phone whose clock is a little
/// off still works, and no more codes are valid at once than that needs.
pub const DRIFT_STEPS: u64 = 1;
pub const RECOVERY_CODES: usize = 10;

const DIGITS: u32 = 6;
/// 160 bits, the HMAC-SHA1 output size RFC 4226 recommends (and what pyotp generates).
const SECRET_BYTES: usize = 20;
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The shared TOTP key. Never printed: anyone who has it can produce codes.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// RFC 4648 base32 as authenticator apps and pyotp write it: either case, padding optional,
    /// spaces (as apps group the characters for typing) ignored. `None` for anything else,
    /// including an empty secret. No minimum length beyond that, so imported secrets of any
    /// length keep working.
    pub fn from_base32(encoded: &str) -> Option<Self> {
        let compact: Vec<u8> = encoded.bytes().filter(|&b| b != b' ').collect();
        let unpadded = compact
            .iter()
            .rposition(|&b| b != b'=')
            .map_or(&compact[..0], |last| &compact[..=last]);
        // 1, 3 or 6 characters past a full 8-character group cannot come from whole bytes.
        if unpadded.is_empty() || matches!(unpadded.len() % 8, 1 | 3 | 6) {
            return None;
        }
        let mut bytes = Vec::with_capacity(unpadded.len() * 5 / 8);
        let mut buffer: u32 = 0;
        let mut bits = 0;
        for &c in unpadded {
            let value = BASE32_ALPHABET
                .iter()
                .position(|&a| a == c.to_ascii_uppercase())?;
            buffer = (buffer << 5) | value as u32;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push((buffer >> bits) as u8);
                buffer &= (1 << bits) - 1;
            }
        }
        Some(Self(bytes))
    }

    /// Upper case, unpadded: the form `otpauth://` URIs and manual entry use.
    pub fn to_base32(&self) -> String {
        let mut out = String::with_capacity(self.0.len().div_ceil(5) * 8);
        let mut buffer: u32 = 0;
        let mut bits = 0;
        for &byte in &self.0 {
            buffer = (buffer << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(BASE32_ALPHABET[((buffer >> bits) & 31) as usize] as char);
            }
            buffer &= (1 << bits) - 1;
        }
        if bits > 0 {
            out.push(BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
        }
        out
    }
}

/// The 6-digit code for one time step (`unix_secs / STEP_SECONDS`), zero-padded.
pub fn code_at(secret: &TotpSecret, counter: u64) -> String {
    code_with_digits(secret, counter, DIGITS)
}

/// RFC 4226 HOTP with dynamic truncation; `digits` other than 6 only for the RFC's test vectors.
fn code_with_digits(secret: &TotpSecret, counter: u64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(&secret.0).expect("HMAC accepts keys of any length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    let code = u64::from(binary) % 10u64.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

/// The time step, within `DRIFT_STEPS` of `now_unix_secs`, whose code this is; `None` if none.
/// Spaces are ignored (apps display `123 456`); anything but exactly six ASCII digits is `None`.
/// Every step in the window is compared, in constant time, whichever matches. The caller must
/// refuse a step at or below the last one it accepted (see the module documentation).
pub fn matching_step(secret: &TotpSecret, code: &str, now_unix_secs: i64) -> Option<u64> {
    let code: Vec<u8> = code.trim().bytes().filter(|&b| b != b' ').collect();
    if code.len() != DIGITS as usize || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // A clock before 1970 is broken, not a reason to accept anything.
    let current = u64::try_from(now_unix_secs).ok()? / STEP_SECONDS;
    let mut found = None;
    for counter in current.saturating_sub(DRIFT_STEPS)..=current.saturating_add(DRIFT_STEPS) {
        let expected = code_at(secret, counter);
        // Codes of neighbouring steps can collide (one in a million); the later step is the
        // one to record, so the replay rule then covers both.
        if bool::from(expected.as_bytes().ct_eq(&code)) {
            found = Some(counter);
        }
    }
    found
}

/// The `otpauth://` URI an authenticator app reads from the enrolment QR code. The issuer is
/// both the label prefix and a parameter, as Google Authenticator's key URI format asks.
pub fn provisioning_uri(secret: &TotpSecret, account: &str, issuer: &str) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
         &algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        account = percent_encode(account),
        secret = secret.to_base32(),
    )
}

/// Everything but RFC 3986's unreserved characters, so `:`, `@`, `&` and spaces (as `%20`, not
/// `+`, which apps would show literally) cannot break the label or the query.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Ten single-use codes, `xxxx-xxxx-xxxx` in lower-case hex (48 random bits each), to show the
/// user once; store only [`hash_recovery_code`] of each.
pub fn generate_recovery_codes() -> Vec<String> {
    let mut codes: Vec<String> = Vec::with_capacity(RECOVERY_CODES);
    while codes.len() < RECOVERY_CODES {
        let mut bytes = [0u8; 6];
        OsRng.fill_bytes(&mut bytes);
        let code = format!(
            "{}-{}-{}",
            hex(&bytes[0..2]),
            hex(&bytes[2..4]),
            hex(&bytes[4..6])
        );
        // A repeat is a one-in-trillions event, but two equal codes would be one code.
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// SHA-256 hex of the code as typed, trimmed, without spaces and lower-cased. The codes carry 48
/// random bits, so an unsalted digest suffices (as for refresh tokens); it is stored so that a
/// database leak hands over no working way in. For the lower-case codes fastapi-fullauth
/// generates this is the same digest it stores, so imported codes keep working.
pub fn hash_recovery_code(code: &str) -> String {
    let normalised: String = code
        .trim()
        .chars()
        .filter(|&c| c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex(&Sha256::digest(normalised.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6238 Appendix B SHA1 key, "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc_6238_sha1_vectors() {
        for (time, expected) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(
                code_with_digits(&rfc_secret(), time / STEP_SECONDS, 8),
                expected,
                "{time}"
            );
        }
        // Six digits are the low six of the eight, zero-padded (checked against pyotp).
        assert_eq!(code_at(&rfc_secret(), 59 / STEP_SECONDS), "287082");
        assert_eq!(
            code_at(&rfc_secret(), 1_111_111_109 / STEP_SECONDS),
            "081804"
        );
    }

    #[test]
    fn base32_known_value_and_variants() {
        let known = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(rfc_secret().to_base32(), known);
        assert_eq!(TotpSecret::from_base32(known), Some(rfc_secret()));
        assert_eq!(
            TotpSecret::from_base32(&known.to_lowercase()),
            Some(rfc_secret())
        );
        assert_eq!(
            TotpSecret::from_base32("gezd gnbv gy3t qojq GEZD GNBV GY3T QOJQ"),
            Some(rfc_secret())
        );
        // RFC 4648 section 10 vectors, padded and unpadded.
        for (raw, encoded) in [
            ("f", "MY======"),
            ("fo", "MZXQ===="),
            ("foo", "MZXW6==="),
            ("foob", "MZXW6YQ="),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI======"),
        ] {
            let secret = TotpSecret(raw.as_bytes().to_vec());
            assert_eq!(TotpSecret::from_base32(encoded).as_ref(), Some(&secret));
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(TotpSecret::from_base32(unpadded).as_ref(), Some(&secret));
            assert_eq!(secret.to_base32(), unpadded);
        }
    }

    #[test]
    fn base32_refuses_what_is_not_base32() {
        for bad in [
            "",
            " ",
            "====",
            "A",
            "ABC",
            "ABCDEF",
            "MZXW6YT1",
            "MZXW6YT0",
            "MZXW6YT8",
            "MZ=XW6YT",
            "MZXW6YTÄ",
            "MZXW-6YTB",
        ] {
            assert_eq!(TotpSecret::from_base32(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_round_trips_generated_and_odd_lengths() {
        for len in 1..=41 {
            let secret = TotpSecret((0..len).map(|i| (i * 37 + 11) as u8).collect());
            assert_eq!(TotpSecret::from_base32(&secret.to_base32()), Some(secret));
        }
        let generated = TotpSecret::generate();
        assert_eq!(generated.0.len(), 20);
        assert_eq!(generated.to_base32().len(), 32);
        assert_eq!(
            TotpSecret::from_base32(&generated.to_base32()),
            Some(generated.clone())
        );
        assert_ne!(generated, TotpSecret::generate());
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        assert_eq!(format!("{:?}", rfc_secret()), "TotpSecret(<redacted>)");
    }

    #[test]
    fn drift_window_is_one_step_either_side() {
        let secret = rfc_secret();
        // Step 56666665 starts at 1_699_999_950; codes checked against pyotp.
        let now = 1_699_999_957;
        let current = 56_666_665;
        assert_eq!(code_at(&secret, current), "276857");
        for (counter, code, accepted) in [
            (current - 2, "254961", false),
            (current - 1, "713364", true),
            (current, "276857", true),
            (current + 1, "921300", true),
            (current + 2, "732303", false),
        ] {
            assert_eq!(code_at(&secret, counter), code);
            assert_eq!(
                matching_step(&secret, code, now),
                accepted.then_some(counter),
                "{counter}"
            );
        }
        assert_eq!(matching_step(&secret, "276 857", now), Some(current));
        assert_eq!(matching_step(&secret, " 276857\n", now), Some(current));
        assert_eq!(matching_step(&secret, "276858", now), None);
        assert_eq!(matching_step(&secret, "276857", -1), None);
        // Near the epoch the window simply has no step before 0.
        assert_eq!(matching_step(&secret, &code_at(&secret, 0), 10), Some(0));
    }

    #[test]
    fn codes_that_are_not_six_ascii_digits_are_refused() {
        let secret = rfc_secret();
        let now = 1_699_999_957;
        for bad in [
            "",
            "27685",
            "2768570",
            "27685a",
            "+76857",
            "-76857",
            "27685 7x",
            "２７６８５７",
            "٢٧٦٨٥٧",
            "276\u{0}857",
            "276\t857",
        ] {
            assert_eq!(matching_step(&secret, bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn provisioning_uri_format() {
        let secret = TotpSecret::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(
            provisioning_uri(&secret, "alice+mfa@example.com", "Hook Auth & Co"),
            "otpauth://totp/Hook%20Auth%20%26%20Co:alice%2Bmfa%40example.com\
             ?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Hook%20Auth%20%26%20Co\
             &algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            provisioning_uri(&secret, "ü:x", "a/b"),
            "otpauth://totp/a%2Fb:%C3%BC%3Ax?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
             &issuer=a%2Fb&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_are_ten_unique_hex_triplets() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for code in &codes {
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 3, "{code}");
            for group in groups {
                assert_eq!(group.len(), 4, "{code}");
                assert!(
                    group
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                    "{code}"
                );
            }
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        assert_ne!(codes, generate_recovery_codes());
    }

    #[test]
    fn recovery_code_hash_is_fullauths_digest_of_the_normalised_code() {
        // hashlib.sha256(b"3f9a-0c1e-b27d").hexdigest(), as fastapi-fullauth stores it.
        let expected = "c1cc6cac4009e538e7ef600f0dd6c806ea3aeed9dbc14d918eddd1763a5dc08c";
        for typed in [
            "3f9a-0c1e-b27d",
            "3F9A-0C1E-B27D",
            " 3f9a-0c1e-b27d\n",
            "3f9a - 0c1e - b27d",
        ] {
            assert_eq!(hash_recovery_code(typed), expected, "{typed:?}");
        }
        assert_ne!(hash_recovery_code("3f9a-0c1e-b27e"), expected);
        assert_ne!(hash_recovery_code("3f9a0c1eb27d"), expected);
    }
}
