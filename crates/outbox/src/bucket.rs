//! Which bucket a workspace's rows are in: the unit relays lock.

/// Number of buckets (rows of `auditlog_outbox_bucket`, 0 to `BUCKETS - 1`).
pub const BUCKETS: i16 = 64;

/// The bucket of `workspace_id`: FNV-1a (32 bit) of its UTF-8 bytes, modulo [`BUCKETS`].
/// Stable across versions and languages (documented in docs/outbox.md, so a writer in
/// another language can fill the column).
pub fn bucket_of(workspace_id: &str) -> i16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in workspace_id.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    // BUCKETS is positive and small: the remainder fits.
    (h % BUCKETS as u32) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_answers() {
        // FNV-1a 32: "" = 0x811c9dc5, "a" = 0xe40c292c, "foobar" = 0xbf9cf968.
        assert_eq!(bucket_of(""), (0x811c_9dc5u32 % 64) as i16);
        assert_eq!(bucket_of("a"), (0xe40c_292cu32 % 64) as i16);
        assert_eq!(bucket_of("foobar"), (0xbf9c_f968u32 % 64) as i16);
    }
}
