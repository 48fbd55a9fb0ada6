//! Random identifiers and secrets, and their redaction for responses.
//!
//! Destination credentials (HEC tokens, Datadog API keys, S3 secret keys) and webhook signing
//! secrets are stored in clear in the `streams` table: the worker must send them. Responses
//! of the API and the CLI's lists never carry them: [`redacted`] keeps only the last four
//! characters (`****abcd`), enough to tell two credentials apart.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::Rng as _;

use crate::model::{Destination, SigningSecret, Stream};

/// Prefix of a stream id.
pub const STREAM_ID_PREFIX: &str = "str_";
/// Prefix of a webhook signing secret (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes of a signing secret.
pub const SECRET_BYTES: usize = 32;

/// A new stream id: `str_` + 24 random lowercase letters and digits.
pub fn new_stream_id() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let id: String = (0..24)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    format!("{STREAM_ID_PREFIX}{id}")
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_signing_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill(&mut bytes[..]);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// `****` and the last four characters of `secret` (all of it hidden when it is short).
pub fn redacted(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "****".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("****{tail}")
}

impl Destination {
    /// The destination with its credentials redacted ([`redacted`]).
    pub fn redacted(&self) -> Self {
        self.map_credentials(redacted)
    }

    /// The destination with its credentials emptied (what a deleted stream keeps).
    pub fn without_credentials(&self) -> Self {
        self.map_credentials(|_| String::new())
    }

    fn map_credentials(&self, f: impl Fn(&str) -> String) -> Self {
        let mut d = self.clone();
        match &mut d {
            Destination::Webhook { .. } => {}
            Destination::SplunkHec { token, .. } => *token = f(token),
            Destination::Datadog { api_key, .. } => *api_key = f(api_key),
            Destination::S3 {
                secret_access_key, ..
            } => *secret_access_key = f(secret_access_key),
        }
        d
    }
}

impl Stream {
    /// The stream as responses show it: credentials and signing secrets redacted.
    pub fn redacted(&self) -> Self {
        let mut s = self.clone();
        s.spec.destination = s.spec.destination.redacted();
        s.secrets = s
            .secrets
            .iter()
            .map(|k| SigningSecret {
                secret: redacted(&k.secret),
                ..k.clone()
            })
            .collect();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_have_their_shape() {
        let id = new_stream_id();
        assert!(id.starts_with("str_") && id.len() == 28, "{id}");
        assert_ne!(id, new_stream_id());
        let s = new_signing_secret();
        let raw = STANDARD.decode(s.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(raw.len(), 32);
        assert_ne!(s, new_signing_secret());
    }

    #[test]
    fn redaction_keeps_four_characters_of_long_secrets_only() {
        assert_eq!(redacted("0123456789abcdef"), "****cdef");
        assert_eq!(redacted("short"), "****");
        assert_eq!(redacted(""), "****");
        let d = Destination::SplunkHec {
            url: "https://splunk:8088".into(),
            token: "11111111-2222-3333-4444-555555555555".into(),
            index: None,
            sourcetype: None,
        };
        let shown = serde_json::to_string(&d.redacted()).unwrap();
        assert!(
            !shown.contains("11111111") && shown.contains("****5555"),
            "{shown}"
        );
    }
}
