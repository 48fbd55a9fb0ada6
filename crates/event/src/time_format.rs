//! `time` on the wire: accepted as RFC 3339 or integer epoch milliseconds,
//! written as RFC 3339 UTC with exactly three fractional digits.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{de, Deserialize, Deserializer, Serializer};

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
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Millis(i64),
        Text(String),
    }
    let t = match Wire::deserialize(d).map_err(|_| {
        de::Error::custom("time: expected an RFC 3339 string or integer epoch milliseconds")
    })? {
        Wire::Millis(ms) => Utc
            .timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| de::Error::custom(format!("time: {ms} ms is out of range")))?,
        Wire::Text(s) => DateTime::parse_from_rfc3339(&s)
            .map_err(|e| de::Error::custom(format!("time: {s:?} is not RFC 3339: {e}")))?
            .with_timezone(&Utc),
    };
    Ok(truncate_to_millis(t))
}
