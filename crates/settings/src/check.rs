//! The checks config sections repeat. Each returns a [`BadSetting`] naming `field`.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::{BadSetting, Result};

/// Fails with `reason` unless `ok`.
pub fn ensure(ok: bool, field: &str, reason: impl Into<String>) -> Result {
    if ok {
        Ok(())
    } else {
        Err(BadSetting::new(field, reason))
    }
}

/// A duration within `lo..=hi`: `api.idle_timeout: 0s is outside 100ms..=1h`.
pub fn between(field: &str, value: Duration, lo: Duration, hi: Duration) -> Result {
    let shown = crate::duration::format;
    ensure(
        (lo..=hi).contains(&value),
        field,
        format!("{} is outside {}..={}", shown(value), shown(lo), shown(hi)),
    )
}

/// A duration of at least `lo`: `producer.startup_timeout: must be at least 100ms (is 0s)`.
pub fn at_least(field: &str, value: Duration, lo: Duration) -> Result {
    let shown = crate::duration::format;
    ensure(
        value >= lo,
        field,
        format!("must be at least {} (is {})", shown(lo), shown(value)),
    )
}

/// A duration of at most `hi`: `producer.linger: must be at most 1m (is 61s)`.
pub fn at_most(field: &str, value: Duration, hi: Duration) -> Result {
    let shown = crate::duration::format;
    ensure(
        value <= hi,
        field,
        format!("must be at most {} (is {})", shown(hi), shown(value)),
    )
}

/// A number within `range`: `consumer.batch_max_rows: 0 is not in 1..=1000000`.
pub fn in_range<T: PartialOrd + Display>(
    field: &str,
    value: T,
    range: RangeInclusive<T>,
) -> Result {
    let reason = format!("{value} is not in {}..={}", range.start(), range.end());
    ensure(range.contains(&value), field, reason)
}

/// Not empty once trimmed.
pub fn not_blank(field: &str, value: &str) -> Result {
    ensure(!value.trim().is_empty(), field, "must not be empty")
}

/// An IP address and a port (`127.0.0.1:8080`); `example` is shown when it is not one.
pub fn socket_addr(field: &str, value: &str, example: &str) -> Result {
    ensure(
        value.parse::<SocketAddr>().is_ok(),
        field,
        format!("{value:?} is not an address like {example}"),
    )
}

/// A Kafka topic name: 1 to 249 ASCII letters, digits, `.`, `_` and `-`.
pub fn topic_name(field: &str, topic: &str) -> Result {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    ensure(
        ok,
        field,
        "must be 1 to 249 characters of ASCII letters, digits, `.`, `_` and `-`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_names_the_field() {
        let ms = Duration::from_millis;
        assert!(between("a.b", ms(5), ms(1), ms(10)).is_ok());
        assert_eq!(
            between("a.b", ms(50), ms(100), Duration::from_secs(600))
                .unwrap_err()
                .to_string(),
            "a.b: 50ms is outside 100ms..=10m"
        );
        assert_eq!(
            at_least("p.t", Duration::ZERO, ms(100)).unwrap_err().reason,
            "must be at least 100ms (is 0s)"
        );
        assert_eq!(
            at_most("p.l", Duration::from_secs(61), Duration::from_secs(60))
                .unwrap_err()
                .reason,
            "must be at most 1m (is 1m 1s)"
        );
        assert_eq!(
            in_range("c.rows", 0, 1..=10).unwrap_err().to_string(),
            "c.rows: 0 is not in 1..=10"
        );
        assert_eq!(not_blank("c.id", " ").unwrap_err().field, "c.id");
        assert!(socket_addr("a.listen", "127.0.0.1:1", "x").is_ok());
        assert_eq!(
            socket_addr("a.listen", "nope", "127.0.0.1:8080")
                .unwrap_err()
                .to_string(),
            "a.listen: \"nope\" is not an address like 127.0.0.1:8080"
        );
        assert!(topic_name("k.topic", "audit-events").is_ok());
        assert!(topic_name("k.topic", "a b").is_err());
        assert!(topic_name("k.topic", "").is_err());
    }
}
