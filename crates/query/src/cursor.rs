//! Opaque keyset cursors: the `(time, event_id)` of the last row of a page, the sort order and
//! a fingerprint of the filter, signed with HMAC-SHA-256 and encoded base64url. A changed,
//! truncated or foreign cursor (other filters, order or workspace) is [`Error::BadCursor`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

use crate::filter::Order;
use crate::{Error, Result};

const VERSION: u8 = 1;
const BODY_LEN: usize = 1 + 1 + 8 + 16 + 8;
pub(crate) const MAC_LEN: usize = 16;
/// Longest cursor text accepted (anything longer is not ours).
const MAX_TEXT_LEN: usize = 128;

/// Where the next page starts: strictly after this row in `order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Sort order of the listing.
    pub order: Order,
    /// `time` of the last row returned, epoch milliseconds.
    pub time_ms: i64,
    /// `event_id` of the last row returned.
    pub event_id: Uuid,
    /// [`crate::Filter::fingerprint`] of the listing.
    pub fingerprint: [u8; 8],
}

/// The signing key.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// From the configured secret; empty = 32 random bytes (valid for this process only).
    pub fn new(secret: &str) -> Self {
        if secret.is_empty() {
            let mut k = vec![0u8; 32];
            rand::rng().fill_bytes(&mut k);
            Self(k)
        } else {
            Self(secret.as_bytes().to_vec())
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// `body` with its tag appended, as base64url text (every cursor's envelope).
    pub(crate) fn seal(&self, mut body: Vec<u8>) -> String {
        let mut mac = self.mac();
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes()[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(body)
    }

    /// The body of a text made by [`Self::seal`], once its encoding, length (`min_body` bytes at
    /// least, `max_text` characters at most) and tag are checked.
    pub(crate) fn open(&self, text: &str, min_body: usize, max_text: usize) -> Result<Vec<u8>> {
        if text.len() > max_text {
            return Err(Error::BadCursor("too long to be a cursor"));
        }
        let mut raw = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| Error::BadCursor("not a cursor (bad encoding)"))?;
        if raw.len() < min_body + MAC_LEN {
            return Err(Error::BadCursor("truncated or not a cursor"));
        }
        let tag = raw.split_off(raw.len() - MAC_LEN);
        let mut mac = self.mac();
        mac.update(&raw);
        mac.verify_truncated_left(&tag).map_err(|_| {
            Error::BadCursor("signature mismatch (modified, or from another server)")
        })?;
        Ok(raw)
    }

    /// The cursor's text.
    pub fn encode(&self, c: &Cursor) -> String {
        let mut buf = Vec::with_capacity(BODY_LEN + MAC_LEN);
        buf.push(VERSION);
        buf.push(match c.order {
            Order::Desc => 0,
            Order::Asc => 1,
        });
        buf.extend_from_slice(&c.time_ms.to_be_bytes());
        buf.extend_from_slice(c.event_id.as_bytes());
        buf.extend_from_slice(&c.fingerprint);
        self.seal(buf)
    }

    /// Checks and decodes a cursor made by [`Self::encode`] for this `order` and `fingerprint`.
    pub fn decode(&self, text: &str, order: Order, fingerprint: [u8; 8]) -> Result<Cursor> {
        let body = self.open(text, BODY_LEN, MAX_TEXT_LEN)?;
        if body.len() != BODY_LEN {
            return Err(Error::BadCursor("truncated or not a cursor"));
        }
        if body[0] != VERSION {
            return Err(Error::BadCursor("unsupported cursor version"));
        }
        let c = Cursor {
            order: if body[1] == 0 {
                Order::Desc
            } else {
                Order::Asc
            },
            time_ms: i64::from_be_bytes(body[2..10].try_into().unwrap_or_default()),
            event_id: Uuid::from_slice(&body[10..26])
                .map_err(|_| Error::BadCursor("not a cursor"))?,
            fingerprint: body[26..34].try_into().unwrap_or_default(),
        };
        if c.order != order || c.fingerprint != fingerprint {
            return Err(Error::BadCursor(
                "belongs to a listing with other filters or order; start again without cursor",
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cursor {
        Cursor {
            order: Order::Desc,
            time_ms: 1_767_225_600_123,
            event_id: Uuid::now_v7(),
            fingerprint: [7; 8],
        }
    }

    #[test]
    fn round_trips() {
        let k = CursorKey::new("secret");
        let c = sample();
        assert_eq!(k.decode(&k.encode(&c), Order::Desc, [7; 8]).unwrap(), c);
    }

    #[test]
    fn tampering_truncation_and_misuse_are_rejected() {
        let k = CursorKey::new("secret");
        let text = k.encode(&sample());
        let mut chars: Vec<char> = text.chars().collect();
        for i in 0..chars.len() {
            let orig = chars[i];
            chars[i] = if orig == 'A' { 'B' } else { 'A' };
            let t: String = chars.iter().collect();
            assert!(k.decode(&t, Order::Desc, [7; 8]).is_err(), "flip at {i}");
            chars[i] = orig;
        }
        for n in 0..text.len() {
            assert!(k.decode(&text[..n], Order::Desc, [7; 8]).is_err());
        }
        assert!(k.decode(&text, Order::Asc, [7; 8]).is_err());
        assert!(k.decode(&text, Order::Desc, [8; 8]).is_err());
        assert!(CursorKey::new("other")
            .decode(&text, Order::Desc, [7; 8])
            .is_err());
        assert!(k
            .decode("'; DROP TABLE events; --", Order::Desc, [7; 8])
            .is_err());
    }
}
