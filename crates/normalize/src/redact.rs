//! Removes secrets (OTP codes, passwords, TOTP secrets, tokens) from raw records before they are
//! written anywhere (dead letters, logs), and truncates them to a bounded size.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// Replacement text for a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// True for keys that name a secret: password, passcode, otp, code, secret, token, pin,
/// credential values, cookies and authorization headers (case, `_` and `-` ignored).
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    const EXACT: &[&str] = &[
        "pass",
        "passwd",
        "password",
        "passcode",
        "otp",
        "code",
        "pin",
        "secret",
        "token",
        "cookie",
        "authorization",
        "apikey",
        "credential",
        "credentials",
        "seed",
        "totp",
        "hotp",
        "mfacode",
        "verificationcode",
        "recoverycode",
        "backupcode",
        "otpauth",
        "sessiontoken",
        "statetoken",
        "smscode",
        "authcode",
        "onetimecode",
        "securitycode",
        "bypasscode",
    ];
    const SUFFIX: &[&str] = &[
        "password",
        "passcode",
        "secret",
        "token",
        "otp",
        "apikey",
        "privatekey",
    ];
    EXACT.contains(&k.as_str()) || SUFFIX.iter().any(|s| k.ends_with(s)) || k.starts_with("otp")
}

static TEXT_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)("?(?:[a-z_\-]*(?:password|passwd|passcode|secret|token|otp|apikey)|pass|code|pin|cookie|authorization)"?\s*[=:]\s*)("(?:[^"\\]|\\.)*"|[^,\s;&}]+)"#,
    )
    .expect("valid regex")
});

static OTPAUTH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"otpauth://[^\s\x22]+").expect("valid regex"));

/// Longest raw record kept in the `raw` column.
pub const MAX_RAW: usize = 256 << 10;

/// Substrings (any case) that every secret-named key or `key=value` secret contains; a record
/// without any of them has nothing to redact.
static HINTS: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build([
            "pass",
            "otp",
            "code",
            "pin",
            "secret",
            "token",
            "cookie",
            "author",
            "key",
            "credential",
            "seed",
        ])
        .expect("valid patterns")
});

/// The raw record as stored beside its event (the `raw` column): redacted like a dead letter,
/// but only parsed and rewritten when it could hold a secret at all.
pub fn redact_record(raw: &[u8]) -> String {
    if raw.len() <= MAX_RAW && !HINTS.is_match(raw) {
        return String::from_utf8_lossy(raw).into_owned();
    }
    redact_raw(raw, MAX_RAW)
}

/// Redact a raw record and cut it to at most `max` bytes (at a character boundary).
pub fn redact_raw(raw: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(raw);
    let redacted = match serde_json::from_str::<Value>(&text) {
        Ok(mut v) => {
            redact_value(&mut v);
            v.to_string()
        }
        Err(_) => redact_text(&text),
    };
    truncate(redacted, max)
}

/// Redact secret-named keys anywhere in a JSON value, including `{"name": "otp", "value": …}`
/// parameter pairs.
pub fn redact_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let named_secret = map
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(is_secret_key);
            for (k, val) in map.iter_mut() {
                if is_secret_key(k) || (named_secret && (k == "value" || k.ends_with("Value"))) {
                    *val = Value::String(REDACTED.into());
                } else {
                    redact_value(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::String(s) if s.starts_with("otpauth://") => *s = REDACTED.into(),
        // Free text and URLs: `…?passCode=123456&…`, `password=… in a message`.
        Value::String(s) if HINTS.is_match(s.as_bytes()) => *s = redact_text(s),
        _ => {}
    }
}

/// `key=value` secrets and `otpauth://` URIs inside text.
fn redact_text(text: &str) -> String {
    let t = TEXT_SECRET.replace_all(text, |c: &regex::Captures| format!("{}{REDACTED}", &c[1]));
    OTPAUTH.replace_all(&t, REDACTED).into_owned()
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_json_keys_parameters_and_text_pairs() {
        let out = redact_raw(br#"{"user":"a","password":"hunter2","nested":{"otp_code":"123456","sessionToken":"tok"},"parameters":[{"name":"otp","value":"654321"}],"uri":"otpauth://totp/x?secret=JBSWY3DP"}"#, 4096);
        for secret in ["hunter2", "123456", "tok", "654321", "JBSWY3DP"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(out.contains("\"user\":\"a\""));
        let out = redact_raw(
            b"type=LOGIN, password=hunter2, code=991122, username=bob {broken",
            4096,
        );
        assert!(
            !out.contains("hunter2") && !out.contains("991122") && out.contains("username=bob"),
            "{out}"
        );
    }

    #[test]
    fn redacts_secrets_inside_json_strings() {
        let out = redact_raw(
            br#"{"requestUri":"/api/v1/authn/factors/f1/verify?passCode=804216&rememberDevice=false","message":"answered: password=Tr0ub4dor recovery_code=rc-1 ok","link":"see otpauth://totp/x?secret=JBSWY3DP","user":"ann"}"#,
            4096,
        );
        for secret in ["804216", "Tr0ub4dor", "rc-1", "JBSWY3DP"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(
            out.contains("rememberDevice=false") && out.contains("\"user\":\"ann\""),
            "{out}"
        );
    }

    #[test]
    fn truncates_at_char_boundary() {
        let out = redact_raw("é".repeat(3000).as_bytes(), 4096);
        assert!(out.len() <= 4096 && out.chars().all(|c| c == 'é'));
    }
}
