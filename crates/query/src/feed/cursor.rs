//! The feed's opaque cursor: a position, the filter's fingerprint and the time it was issued,
//! signed with the API's cursor key (as the list's cursors, [`crate::cursor`]) and encoded
//! base64url. The issue time lets the API refuse a cursor older than the workspace's retention
//! (rows it still had to deliver may be gone): `410 cursor_expired`.

use crate::cursor::{CursorKey, MAC_LEN};
use crate::{Error, Result};
use auditlog_store::feed::FeedPosition;

/// Distinct from the list cursor's version byte (1): one cannot pass for the other.
const VERSION: u8 = 0x46;
const HEAD_LEN: usize = 1 + 8 + 8 + 2;
const ENTRY_LEN: usize = 4 + 8;
/// Most partitions a cursor carries (a workspace normally lives in one).
pub const MAX_PARTITIONS: usize = 256;

/// What a feed cursor says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedCursor {
    /// Where the next page starts.
    pub position: FeedPosition,
    /// [`crate::Filter::fingerprint`] of the feed.
    pub fingerprint: [u8; 8],
    /// When it was issued, epoch ms.
    pub issued_ms: i64,
}

impl FeedCursor {
    /// The cursor's text. More than [`MAX_PARTITIONS`] partitions is an internal error.
    pub fn encode(&self, key: &CursorKey) -> Result<String> {
        let n = self.position.offsets.len();
        if n > MAX_PARTITIONS {
            return Err(Error::Internal(format!(
                "feed position of {n} partitions (at most {MAX_PARTITIONS} fit a cursor)"
            )));
        }
        let mut buf = Vec::with_capacity(HEAD_LEN + n * ENTRY_LEN + MAC_LEN);
        buf.push(VERSION);
        buf.extend_from_slice(&self.fingerprint);
        buf.extend_from_slice(&self.issued_ms.to_be_bytes());
        buf.extend_from_slice(&(n as u16).to_be_bytes());
        for (p, o) in &self.position.offsets {
            buf.extend_from_slice(&p.to_be_bytes());
            buf.extend_from_slice(&o.to_be_bytes());
        }
        Ok(key.seal(buf))
    }

    /// Checks and decodes a cursor of a feed with `fingerprint`.
    pub fn decode(key: &CursorKey, text: &str, fingerprint: [u8; 8]) -> Result<Self> {
        let max_text = (HEAD_LEN + MAX_PARTITIONS * ENTRY_LEN + MAC_LEN).div_ceil(3) * 4;
        let body = key.open(text, HEAD_LEN, max_text)?;
        if body[0] != VERSION {
            return Err(Error::BadCursor("not a feed cursor"));
        }
        let be8 = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or_default());
        let fp: [u8; 8] = body[1..9].try_into().unwrap_or_default();
        let issued_ms = be8(&body[9..17]);
        let n = u16::from_be_bytes([body[17], body[18]]) as usize;
        let entries = &body[HEAD_LEN..];
        if entries.len() != n * ENTRY_LEN {
            return Err(Error::BadCursor("truncated or not a cursor"));
        }
        let offsets = entries
            .chunks_exact(ENTRY_LEN)
            .map(|e| {
                let p = i32::from_be_bytes(e[..4].try_into().unwrap_or_default());
                (p, be8(&e[4..]))
            })
            .collect();
        if fp != fingerprint {
            return Err(Error::BadCursor(
                "belongs to a feed with other filters or another workspace; start again without cursor",
            ));
        }
        Ok(Self {
            position: FeedPosition { offsets },
            fingerprint: fp,
            issued_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FeedCursor {
        FeedCursor {
            position: FeedPosition {
                offsets: [(0, 17), (3, 1 << 40)].into_iter().collect(),
            },
            fingerprint: [9; 8],
            issued_ms: 1_767_225_600_123,
        }
    }

    #[test]
    fn round_trips_and_refuses_tampering() {
        let k = CursorKey::new("secret");
        let text = sample().encode(&k).unwrap();
        assert_eq!(FeedCursor::decode(&k, &text, [9; 8]).unwrap(), sample());
        let mut chars: Vec<char> = text.chars().collect();
        for i in 0..chars.len() {
            let orig = chars[i];
            chars[i] = if orig == 'A' { 'B' } else { 'A' };
            let t: String = chars.iter().collect();
            assert!(FeedCursor::decode(&k, &t, [9; 8]).is_err(), "flip at {i}");
            chars[i] = orig;
        }
        for n in 0..text.len() {
            assert!(FeedCursor::decode(&k, &text[..n], [9; 8]).is_err());
        }
        assert!(FeedCursor::decode(&k, &text, [8; 8]).is_err());
        assert!(FeedCursor::decode(&CursorKey::new("other"), &text, [9; 8]).is_err());
    }

    #[test]
    fn a_list_cursor_is_not_a_feed_cursor() {
        let k = CursorKey::new("secret");
        let list = k.encode(&crate::cursor::Cursor {
            order: crate::Order::Desc,
            time_ms: 1,
            event_id: uuid::Uuid::nil(),
            fingerprint: [9; 8],
        });
        assert!(FeedCursor::decode(&k, &list, [9; 8]).is_err());
    }

    #[test]
    fn the_largest_position_fits_and_a_larger_one_is_refused() {
        let k = CursorKey::new("secret");
        let mut c = sample();
        c.position.offsets = (0..MAX_PARTITIONS as i32).map(|p| (p, i64::MAX)).collect();
        let text = c.encode(&k).unwrap();
        assert_eq!(FeedCursor::decode(&k, &text, [9; 8]).unwrap(), c);
        c.position.offsets.insert(-1, 0);
        assert!(c.encode(&k).is_err());
    }
}
