//! Secrets as a type: API keys and OAuth tokens that must never be printed.
//!
//! `Secret` redacts itself in `Debug` and `Display`; the only way to the value is
//! [`Secret::expose`], called where the value goes on the wire.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A string that never shows in logs, errors or debug output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for the request that needs it. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

/// Serialises redacted, so a config echoed anywhere never carries the key.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("**REDACTED**")
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "airbyte_secret": true })
    }
}

/// Whether the API key may be sent to `url`: over HTTPS anywhere, over plain HTTP only to
/// a loopback address (`localhost`, `127.0.0.0/8`, `::1`: the emulator, a local proxy).
pub(crate) fn key_may_travel_to(url: &url::Url) -> bool {
    match (url.scheme(), url.host()) {
        ("https", _) => true,
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Domain(name))) => name.eq_ignore_ascii_case("localhost"),
        _ => false,
    }
}

/// Replaces anything that looks like a Stripe secret (`sk_…`, `rk_…`, `rt_…`, `ac_…`)
/// in a text from elsewhere (an error body, a URL) with a redacted form that keeps the
/// prefix and the last four characters, as Stripe's own messages do.
pub fn redact_secrets(text: &str) -> String {
    const PREFIXES: [&str; 6] = ["sk_test_", "sk_live_", "rk_test_", "rk_live_", "rt_", "ac_"];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for prefix in PREFIXES {
            if rest.starts_with(prefix)
                && out
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_')
            {
                let token_len = rest
                    .char_indices()
                    .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
                    .map_or(rest.len(), |(i, _)| i);
                let token = &rest[..token_len];
                let body = &token[prefix.len()..];
                if body.len() >= 8 {
                    out.push_str(prefix);
                    out.push_str("****");
                    out.push_str(&body[body.len() - 4..]);
                } else {
                    out.push_str(token);
                }
                rest = &rest[token_len..];
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_shows_in_debug_display_or_json() {
        let secret = Secret::new("sk_test_abcdefghijklmnop");
        for shown in [
            format!("{secret:?}"),
            format!("{secret}"),
            serde_json::to_string(&secret).unwrap(),
        ] {
            assert!(!shown.contains("abcdefghijklmnop"), "{shown}");
        }
        assert_eq!(secret.expose(), "sk_test_abcdefghijklmnop");
    }

    #[test]
    fn redacts_keys_inside_text() {
        assert_eq!(
            redact_secrets("Invalid API Key provided: sk_live_0123456789abcdef, try again"),
            "Invalid API Key provided: sk_live_****cdef, try again"
        );
        assert_eq!(
            redact_secrets("code=ac_ABCDEFGH12345678&x"),
            "code=ac_****5678&x"
        );
        // Short ids and words that merely contain a prefix are left alone.
        assert_eq!(
            redact_secrets("task_test_1 sk_test_x"),
            "task_test_1 sk_test_x"
        );
    }
}
