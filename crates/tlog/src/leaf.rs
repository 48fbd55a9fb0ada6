//! An event's leaf. Two steps, so that a leaf can be checked without the event after
//! retention deleted it:
//!
//! 1. `content_sha256 = SHA-256(JCS(event))`: the RFC 8785 canonical form of the event's JSON
//!    exactly as the export's NDJSON line carries it (every wire field, payloads included;
//!    `serde_json_canonicalizer`). Numbers are written as JCS says (IEEE 754 doubles).
//! 2. the leaf data is the JCS text of
//!    `{"content_sha256":"<64 lowercase hex>","event_id":"<uuid, lowercase>","time_ms":<int>,"v":1}`
//!    and the leaf hash is `SHA-256(0x00 || leaf data)` ([`crate::merkle::leaf_hash`]).
//!
//! So the leaf binds the event's id and time (what retention is judged on) and its whole
//! content; a stub `{leaf_index, event_id, time_ms, content_sha256}` left after retention
//! still reproduces the leaf hash.

use crate::merkle::Hash;
use crate::{Error, Result};

/// Version of the leaf data layout (the `v` field).
pub const LEAF_VERSION: u32 = 1;

/// SHA-256 of the RFC 8785 canonical form of an event's JSON. An event JCS cannot write (a
/// number outside the IEEE 754 double range, such as `1e400`; text that is not JSON) is hashed
/// as the bytes given, unchanged: the export's text of it, byte for byte. Never fails, so
/// every stored event has a leaf; a verifier applies the same rule.
pub fn content_sha256(event_json: &[u8]) -> Hash {
    let bytes = canonical_json(event_json).unwrap_or_else(|_| event_json.to_vec());
    sha256(&bytes)
}

/// The RFC 8785 canonical form of a JSON text; [`Error::Canonical`] when it is not JSON or has
/// a number JCS cannot write.
pub fn canonical_json(json: &[u8]) -> Result<Vec<u8>> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| Error::Canonical(e.to_string()))?;
    serde_json_canonicalizer::to_vec(&value).map_err(|e| Error::Canonical(e.to_string()))
}

fn sha256(bytes: &[u8]) -> Hash {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// The leaf data as JCS writes it (keys sorted; `time_ms` an IEEE 754 double, as JCS says).
#[derive(serde::Serialize)]
struct LeafJson<'a> {
    content_sha256: String,
    event_id: &'a str,
    time_ms: i64,
    v: u32,
}

/// What a leaf commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafData {
    /// The event's id (lowercase hyphenated UUID text).
    pub event_id: String,
    /// The event's time, epoch milliseconds.
    pub time_ms: i64,
    /// [`content_sha256`] of the event.
    pub content_sha256: Hash,
}

impl LeafData {
    /// The leaf data bytes (JCS text, see the module docs).
    pub fn canonical(&self) -> Vec<u8> {
        let json = LeafJson {
            content_sha256: hex::encode(self.content_sha256),
            event_id: &self.event_id,
            time_ms: self.time_ms,
            v: LEAF_VERSION,
        };
        // Strings and integers only: JCS cannot fail on them.
        serde_json_canonicalizer::to_vec(&json).unwrap_or_else(|e| panic!("leaf data: {e}"))
    }
    /// `SHA-256(0x00 || canonical())`.
    pub fn leaf_hash(&self) -> Hash {
        crate::merkle::leaf_hash(&self.canonical())
    }
}
