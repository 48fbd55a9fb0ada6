//! Consumer settings (`[consumer]` in the config file, and the dead-letter topic of
//! `[kafka]`), checked by [`SinkConfig::validate`] and [`KafkaSettings::validate`] before any
//! client is built.

use std::ops::Deref;
use std::time::Duration;

use auditlog_producer::KafkaConfig;
use auditlog_settings::check;
use serde::de::{self, DeserializeSeed, IntoDeserializer as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Result;

/// `[kafka]` as the consumer and `auditlog dlq` read it: the connection every client shares
/// (the producer library's [`KafkaConfig`], whose fields sit directly in `[kafka]`) and the
/// dead-letter topic, which producing services never use. Derefs to the connection.
///
/// Read by hand rather than with `#[serde(flatten)]`: flatten buffers the values, so an error
/// would name `kafka` instead of `kafka.security_protocol`. Here every value is read by the
/// config loader's own deserializer, which names the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct KafkaSettings {
    /// Brokers, topic, TLS and SASL.
    #[serde(flatten)]
    pub connection: KafkaConfig,
    /// The dead-letter topic (the consumer writes poison messages there; `auditlog dlq`
    /// lists and replays them). Default `audit-events-dlq`.
    #[serde(default = "default_dlq_topic")]
    pub dlq_topic: String,
}

fn default_dlq_topic() -> String {
    "audit-events-dlq".into()
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            connection: KafkaConfig::default(),
            dlq_topic: default_dlq_topic(),
        }
    }
}

impl<'de> Deserialize<'de> for KafkaSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Section;
        impl<'de> Visitor<'de> for Section {
            type Value = KafkaSettings;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the [kafka] table")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KafkaSettings, A::Error> {
                let mut dlq_topic = None;
                let rest = TakeDlqTopic {
                    inner: map,
                    dlq_topic: &mut dlq_topic,
                };
                let connection =
                    KafkaConfig::deserialize(de::value::MapAccessDeserializer::new(rest))?;
                Ok(KafkaSettings {
                    connection,
                    dlq_topic: dlq_topic.unwrap_or_else(default_dlq_topic),
                })
            }
        }
        d.deserialize_map(Section)
    }
}

/// The `[kafka]` entries with `dlq_topic` taken out; the rest goes to [`KafkaConfig`] (which
/// refuses unknown keys).
struct TakeDlqTopic<'a, A> {
    inner: A,
    dlq_topic: &'a mut Option<String>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for TakeDlqTopic<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.inner.next_key::<String>()? {
            if key == "dlq_topic" {
                *self.dlq_topic = Some(self.inner.next_value()?);
            } else {
                return seed.deserialize(key.into_deserializer()).map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

impl Deref for KafkaSettings {
    type Target = KafkaConfig;

    fn deref(&self) -> &KafkaConfig {
        &self.connection
    }
}

impl KafkaSettings {
    /// Checks the connection ([`KafkaConfig::validate`]) and the dead-letter topic's name.
    pub fn validate(&self) -> Result<(), auditlog_settings::BadSetting> {
        self.connection.validate()?;
        check::topic_name("kafka.dlq_topic", &self.dlq_topic)
    }
}

/// Consumer settings (`[consumer]` in the config file). Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Consumer group id. Default `auditlog-sink`.
    pub group_id: String,
    /// Address of the `/metrics` and `/health` endpoints; empty disables them.
    /// Default `127.0.0.1:8081`.
    pub metrics_listen: String,
    /// A partition's batch is cut when it holds this many rows. Default `15000`.
    pub batch_max_rows: usize,
    /// A partition's batch is cut when its messages reach this many bytes. Default `12582912`
    /// (12 MiB): each batch is one ClickHouse part, and every part costs ClickHouse a fixed
    /// amount of work to write and merge; a batch in memory takes about 2.5 times its message bytes.
    pub batch_max_bytes: usize,
    /// A partition's batch is cut this long after its first message arrived. Default `1s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub batch_max_wait: Duration,
    /// When the batches of all partitions together hold more bytes than this, the largest is cut
    /// early (memory bound). Default `33554432` (32 MiB).
    pub max_pending_bytes: usize,
    /// Messages larger than this are dead-lettered as `too_large`. Default `1048576` (1 MiB,
    /// the event model's limit).
    pub max_message_bytes: usize,
    /// How often the workspace plans (retention) are re-read from ClickHouse. Default `10s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub plans_refresh: Duration,
    /// First wait before retrying a failed ClickHouse insert; doubles per attempt. Default `200ms`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub retry_initial_backoff: Duration,
    /// Longest wait between retries of a ClickHouse insert. Default `30s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub retry_max_backoff: Duration,
    /// Kafka group session timeout: how soon a dead consumer's partitions move to another.
    /// Default `10s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub session_timeout: Duration,
    /// Kafka prefetch buffer per consumer (librdkafka `queued.max.messages.kbytes`), KiB. When
    /// it is full, the next fetch waits 20 ms (`fetch.queue.backoff.ms`; librdkafka's default of
    /// 1 s left a consumer with a backlog idle most of the time). Default `16384` (16 MiB).
    pub fetch_queue_kbytes: usize,
    /// Longest a fetch waits at the broker for new messages (librdkafka `fetch.wait.max.ms`).
    /// Default `100ms`: Tansu 0.6.0 sleeps about half of it in every fetch, data or not, so
    /// it adds directly to the emit-to-visible latency.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub fetch_wait_max: Duration,
    /// Where a group with no committed offset starts: `earliest` or `latest`. Default `earliest`.
    pub auto_offset_reset: String,
    /// Static group membership (`group.instance.id`): a restarted process with the same id takes
    /// its partitions back at once instead of waiting for the dead member's session to expire.
    /// Give each process its own stable id (e.g. the pod name). Default empty (dynamic).
    /// Real Kafka only: Tansu 0.6.0 never evicts a dead static member (docs/local-stack.md).
    pub instance_id: String,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            group_id: "auditlog-sink".into(),
            metrics_listen: "127.0.0.1:8081".into(),
            batch_max_rows: 15_000,
            batch_max_bytes: 12 * 1024 * 1024,
            batch_max_wait: Duration::from_secs(1),
            max_pending_bytes: 32 * 1024 * 1024,
            max_message_bytes: auditlog_event::limits::MAX_EVENT_BYTES,
            plans_refresh: Duration::from_secs(10),
            retry_initial_backoff: Duration::from_millis(200),
            retry_max_backoff: Duration::from_secs(30),
            session_timeout: Duration::from_secs(10),
            fetch_queue_kbytes: 16 * 1024,
            fetch_wait_max: Duration::from_millis(100),
            auto_offset_reset: "earliest".into(),
            instance_id: String::new(),
        }
    }
}

impl SinkConfig {
    /// Checks the settings; the error names the field (`consumer.<field>`).
    pub fn validate(&self) -> Result<()> {
        let (ms, secs) = (Duration::from_millis, Duration::from_secs);
        check::not_blank("consumer.group_id", &self.group_id)?;
        if !self.metrics_listen.is_empty() {
            check::socket_addr(
                "consumer.metrics_listen",
                &self.metrics_listen,
                "127.0.0.1:8081 (an IP address and a port), or empty",
            )?;
        }
        check::in_range(
            "consumer.batch_max_rows",
            self.batch_max_rows,
            1..=1_000_000,
        )?;
        check::in_range(
            "consumer.batch_max_bytes",
            self.batch_max_bytes,
            1024..=usize::MAX,
        )?;
        check::between(
            "consumer.batch_max_wait",
            self.batch_max_wait,
            ms(1),
            secs(300),
        )?;
        check::ensure(
            self.max_pending_bytes >= self.batch_max_bytes,
            "consumer.max_pending_bytes",
            format!(
                "{} is below consumer.batch_max_bytes ({})",
                self.max_pending_bytes, self.batch_max_bytes
            ),
        )?;
        check::ensure(
            self.max_message_bytes > 0,
            "consumer.max_message_bytes",
            "must be positive",
        )?;
        check::at_least("consumer.plans_refresh", self.plans_refresh, ms(100))?;
        check::ensure(
            !self.retry_initial_backoff.is_zero(),
            "consumer.retry_initial_backoff",
            "must be positive",
        )?;
        check::ensure(
            self.retry_max_backoff >= self.retry_initial_backoff,
            "consumer.retry_max_backoff",
            "must be at least consumer.retry_initial_backoff",
        )?;
        check::between(
            "consumer.session_timeout",
            self.session_timeout,
            secs(1),
            secs(300),
        )?;
        check::ensure(
            self.fetch_queue_kbytes > 0,
            "consumer.fetch_queue_kbytes",
            "must be positive",
        )?;
        check::between(
            "consumer.fetch_wait_max",
            self.fetch_wait_max,
            ms(1),
            secs(30),
        )?;
        check::ensure(
            matches!(self.auto_offset_reset.as_str(), "earliest" | "latest"),
            "consumer.auto_offset_reset",
            format!("{:?} is not earliest or latest", self.auto_offset_reset),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        SinkConfig::default().validate().unwrap();
        KafkaSettings::default().validate().unwrap();
    }

    #[test]
    fn kafka_settings_read_the_connection_and_the_dead_letter_topic_from_one_section() {
        let k: KafkaSettings =
            serde_json::from_str(r#"{"brokers":"b:9092","dlq_topic":"dead"}"#).unwrap();
        assert_eq!(k.brokers, "b:9092");
        assert_eq!(k.topic, "audit-events");
        assert_eq!(k.dlq_topic, "dead");
        let e = serde_json::from_str::<KafkaSettings>(r#"{"brokerz":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("brokerz"), "{e}");
        let bad = KafkaSettings {
            dlq_topic: "a b".into(),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "kafka.dlq_topic");
    }

    #[test]
    fn errors_name_the_field() {
        type Edit = Box<dyn Fn(&mut SinkConfig)>;
        let cases: Vec<(&str, Edit)> = vec![
            ("consumer.group_id", Box::new(|c| c.group_id = " ".into())),
            (
                "consumer.metrics_listen",
                Box::new(|c| c.metrics_listen = "localhost".into()),
            ),
            (
                "consumer.batch_max_rows",
                Box::new(|c| c.batch_max_rows = 0),
            ),
            (
                "consumer.batch_max_bytes",
                Box::new(|c| c.batch_max_bytes = 10),
            ),
            (
                "consumer.batch_max_wait",
                Box::new(|c| c.batch_max_wait = Duration::ZERO),
            ),
            (
                "consumer.max_pending_bytes",
                Box::new(|c| c.max_pending_bytes = 1024),
            ),
            (
                "consumer.max_message_bytes",
                Box::new(|c| c.max_message_bytes = 0),
            ),
            (
                "consumer.plans_refresh",
                Box::new(|c| c.plans_refresh = Duration::ZERO),
            ),
            (
                "consumer.retry_initial_backoff",
                Box::new(|c| c.retry_initial_backoff = Duration::ZERO),
            ),
            (
                "consumer.retry_max_backoff",
                Box::new(|c| c.retry_max_backoff = Duration::from_millis(1)),
            ),
            (
                "consumer.session_timeout",
                Box::new(|c| c.session_timeout = Duration::ZERO),
            ),
            (
                "consumer.fetch_queue_kbytes",
                Box::new(|c| c.fetch_queue_kbytes = 0),
            ),
            (
                "consumer.fetch_wait_max",
                Box::new(|c| c.fetch_wait_max = Duration::ZERO),
            ),
            (
                "consumer.auto_offset_reset",
                Box::new(|c| c.auto_offset_reset = "smallest".into()),
            ),
        ];
        for (field, edit) in cases {
            let mut c = SinkConfig::default();
            edit(&mut c);
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.contains(field), "{field}: {msg}");
        }
    }
}
