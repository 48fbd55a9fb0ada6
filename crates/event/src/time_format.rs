//! `time` on the wire: accepted as RFC 3339 or integer epoch milliseconds,
//! written as RFC 3339 UTC with exactly three fractional digits.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use std::fmt;

use serde::{de, Deserializer, Serializer};

/// Truncates a timestamp to whole milliseconds (the precision of the model).
pub fn truncate_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(t.timestamp_millis())
        .single()
        .unwrap_or(t)
}

/// Serializes as `2026-11-25T22:03:29.123Z`.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Deserializes RFC 3339 (any offset, converted to UTC) or epoch milliseconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    d.deserialize_any(TimeVisitor).map(truncate_to_millis)
}

/// Reads the two wire forms straight from the parser (no buffering of the value).
struct TimeVisitor;

impl de::Visitor<'_> for TimeVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 string or integer epoch milliseconds")
    }

    fn visit_i64<E: de::Error>(self, ms: i64) -> Result<Self::Value, E> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| E::custom(format!("time: {ms} ms is out of range")))
    }

    fn visit_u64<E: de::Error>(self, ms: u64) -> Result<Self::Value, E> {
        let ms =
            i64::try_from(ms).map_err(|_| E::custom(format!("time: {ms} ms is out of range")))?;
        self.visit_i64(ms)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| E::custom(format!("time: {s:?} is not RFC 3339: {e}")))
    }
}
