//! The one duration style of every setting: a humantime string (`"5ms"`, `"1s"`, `"30s"`,
//! `"2m"`, `"1h"`). A bare number is refused with a hint (it has no unit, so it is never
//! guessed as milliseconds or seconds).
//!
//! A field uses it as `#[serde(with = "auditlog_settings::duration")]` and
//! `#[schemars(with = "auditlog_settings::DurationSchema")]` (so the reference knows it is a
//! duration).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// How a duration is written: `5ms`, `30s`, `1m`, `1h 30m`.
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Parses a duration as written in the config file.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as \"5s\" or \"100ms\": {e}"))
}

/// serde: writes [`format`].
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// serde: reads a duration string; refuses numbers.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

struct DurationVisitor;

const BARE_NUMBER: &str =
    "is a number without a unit; write a duration such as \"5s\" or \"100ms\"";

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"5s\" or \"100ms\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(E::custom(format!("{v} {BARE_NUMBER}")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(format!("{v} {BARE_NUMBER}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(E::custom(format!("{v} {BARE_NUMBER}")))
    }
}

/// The schema of a duration setting: a string with `format: duration` (what
/// [`reference`](crate::reference) shows as a duration).
#[derive(Debug)]
pub struct DurationSchema;

impl schemars::JsonSchema for DurationSchema {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "duration" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, serde::Serialize)]
    struct S {
        #[serde(with = "super")]
        d: Duration,
    }

    #[test]
    fn strings_round_trip_and_bare_numbers_are_refused() {
        let s: S = serde_json::from_str(r#"{"d":"250ms"}"#).unwrap();
        assert_eq!(s.d, Duration::from_millis(250));
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"d":"250ms"}"#);
        let s: S = serde_json::from_str(r#"{"d":"2m"}"#).unwrap();
        assert_eq!(s.d, Duration::from_secs(120));
        let e = serde_json::from_str::<S>(r#"{"d":2000}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2000 is a number without a unit") && e.contains("\"5s\""),
            "{e}"
        );
        let e = serde_json::from_str::<S>(r#"{"d":"5 parsecs"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"5 parsecs\" is not a duration"), "{e}");
        assert_eq!(format(Duration::from_secs(60)), "1m");
    }
}
