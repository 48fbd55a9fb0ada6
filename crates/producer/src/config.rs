//! Kafka connection and producer settings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the audit topics live (`[kafka]` in the config file). Shared by producer and consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, comma separated. Default `127.0.0.1:9092`.
    pub brokers: String,
    /// The audit events topic. Default `audit-events`.
    pub topic: String,
    /// The dead-letter topic. Default `audit-events-dlq`.
    pub dlq_topic: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "audit-events".into(),
            dlq_topic: "audit-events-dlq".into(),
        }
    }
}

/// Producer tuning (`[producer]` in the config file). The producer is always idempotent with
/// `acks=all`; these settings cannot weaken that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {
    /// Compression codec: `lz4`, `zstd` or `none`. Default `lz4`.
    pub compression: Compression,
    /// How long to wait for more events before sending a batch (`linger.ms`). Default `5ms`.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Events the producer buffers before the broker has acknowledged them
    /// (`queue.buffering.max.messages`). Default `100000`.
    pub buffer_capacity: usize,
    /// What `enqueue`/`emit` do when the buffer is full: `wait` for room (at most
    /// `full_wait_timeout`) or fail at once with a `QueueFull` error (`error`). `try_enqueue`
    /// never waits. Default `wait`.
    pub on_full: OnFull,
    /// Longest wait for room in the buffer when `on_full = "wait"`. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub full_wait_timeout: Duration,
    /// How long the client keeps retrying an event (broker down, leader changes) before
    /// reporting it undelivered (`message.timeout.ms`). Default `30s`.
    #[serde(with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// How long `Producer::new` waits for the broker to answer a metadata request for the topic
    /// before failing. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// Client id the broker sees. Default `auditlog-producer`.
    pub client_id: String,
    /// Extra librdkafka properties (`"batch.size" = "1000000"`, security settings, ...),
    /// applied last. `enable.idempotence`, `acks` and `bootstrap.servers` are refused.
    /// Default empty.
    pub properties: BTreeMap<String, String>,
}

/// Compression codec for produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    None,
    /// LZ4 (fast; the default).
    Lz4,
    /// Zstandard (smaller).
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// What to do when the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Fail with `EmitError::QueueFull`.
    Error,
    /// Wait for room, at most `full_wait_timeout`.
    Wait,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            compression: Compression::Lz4,
            linger: Duration::from_millis(5),
            buffer_capacity: 100_000,
            on_full: OnFull::Wait,
            full_wait_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(30),
            startup_timeout: Duration::from_secs(10),
            client_id: "auditlog-producer".into(),
            properties: BTreeMap::new(),
        }
    }
}

/// A setting is out of range; names the field as written in the config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// `producer.linger`, `kafka.brokers`, ...
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Properties the producer sets itself and that configuration may not override.
pub const RESERVED_PROPERTIES: &[&str] = &["enable.idempotence", "acks", "bootstrap.servers"];

impl KafkaConfig {
    /// Checks brokers and topic names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.brokers.split(',').any(|b| b.trim().is_empty()) {
            return Err(invalid(
                "kafka.brokers",
                "must list host:port entries, comma separated",
            ));
        }
        for (field, topic) in [
            ("kafka.topic", &self.topic),
            ("kafka.dlq_topic", &self.dlq_topic),
        ] {
            let ok = !topic.is_empty()
                && topic.len() <= 249
                && topic
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return Err(invalid(
                    field,
                    "must be 1 to 249 characters of ASCII letters, digits, `.`, `_` and `-`",
                ));
            }
        }
        Ok(())
    }
}

impl ProducerConfig {
    /// Checks every field; the error names it (`producer.buffer_capacity`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.linger > Duration::from_secs(60) {
            return Err(invalid("producer.linger", "must be at most 60s"));
        }
        if !(1..=10_000_000).contains(&self.buffer_capacity) {
            return Err(invalid(
                "producer.buffer_capacity",
                "must be between 1 and 10000000",
            ));
        }
        if self.delivery_timeout < Duration::from_millis(100) {
            return Err(invalid(
                "producer.delivery_timeout",
                "must be at least 100ms",
            ));
        }
        if self.delivery_timeout <= self.linger {
            return Err(invalid(
                "producer.delivery_timeout",
                "must be longer than producer.linger",
            ));
        }
        if self.startup_timeout < Duration::from_millis(100) {
            return Err(invalid(
                "producer.startup_timeout",
                "must be at least 100ms",
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(invalid("producer.client_id", "must not be empty"));
        }
        for key in self.properties.keys() {
            if RESERVED_PROPERTIES.contains(&key.as_str()) {
                return Err(invalid(
                    &format!("producer.properties.{key}"),
                    "is set by the producer itself and cannot be overridden",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ProducerConfig::default().validate().unwrap();
        KafkaConfig::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(ProducerConfig, &str)> = vec![
            (
                ProducerConfig {
                    buffer_capacity: 0,
                    ..Default::default()
                },
                "producer.buffer_capacity",
            ),
            (
                ProducerConfig {
                    linger: Duration::from_secs(61),
                    ..Default::default()
                },
                "producer.linger",
            ),
            (
                ProducerConfig {
                    delivery_timeout: Duration::from_millis(1),
                    ..Default::default()
                },
                "producer.delivery_timeout",
            ),
            (
                ProducerConfig {
                    startup_timeout: Duration::ZERO,
                    ..Default::default()
                },
                "producer.startup_timeout",
            ),
            (
                ProducerConfig {
                    client_id: " ".into(),
                    ..Default::default()
                },
                "producer.client_id",
            ),
            (
                ProducerConfig {
                    properties: [("acks".to_owned(), "1".to_owned())].into(),
                    ..Default::default()
                },
                "producer.properties.acks",
            ),
        ];
        for (cfg, field) in cases {
            assert_eq!(cfg.validate().unwrap_err().field, field);
        }
        let bad = KafkaConfig {
            topic: "a b".into(),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "kafka.topic");
    }

    #[test]
    fn reads_humantime_and_enums() {
        let cfg: ProducerConfig = serde_json::from_str(
            r#"{"compression":"zstd","linger":"20ms","on_full":"error","delivery_timeout":"2m"}"#,
        )
        .unwrap();
        assert_eq!(cfg.compression, Compression::Zstd);
        assert_eq!(cfg.linger, Duration::from_millis(20));
        assert_eq!(cfg.on_full, OnFull::Error);
        assert_eq!(cfg.delivery_timeout, Duration::from_secs(120));
    }
}
