//! Consumer settings (`[consumer]` in the config file), checked by [`SinkConfig::validate`]
//! before any client is built.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Consumer settings (`[consumer]` in the config file). Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(with = "humantime_serde")]
    pub batch_max_wait: Duration,
    /// When the batches of all partitions together hold more bytes than this, the largest is cut
    /// early (memory bound). Default `33554432` (32 MiB).
    pub max_pending_bytes: usize,
    /// Messages larger than this are dead-lettered as `too_large`. Default `1048576` (1 MiB,
    /// the event model's limit).
    pub max_message_bytes: usize,
    /// How often the workspace plans (retention) are re-read from ClickHouse. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub plans_refresh: Duration,
    /// First wait before retrying a failed ClickHouse insert; doubles per attempt. Default `200ms`.
    #[serde(with = "humantime_serde")]
    pub retry_initial_backoff: Duration,
    /// Longest wait between retries of a ClickHouse insert. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub retry_max_backoff: Duration,
    /// Kafka group session timeout: how soon a dead consumer's partitions move to another.
    /// Default `10s`.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Kafka prefetch buffer per consumer (librdkafka `queued.max.messages.kbytes`), KiB.
    /// Default `16384` (16 MiB).
    pub fetch_queue_kbytes: usize,
    /// Longest a fetch waits at the broker for new messages (librdkafka `fetch.wait.max.ms`).
    /// Default `100ms`: Tansu 0.6.0 sleeps about half of it in every fetch, data or not, so
    /// it adds directly to the emit-to-visible latency.
    #[serde(with = "humantime_serde")]
    pub fetch_wait_max: Duration,
    /// Where a group with no committed offset starts: `earliest` or `latest`. Default `earliest`.
    pub auto_offset_reset: String,
    /// Static group membership (`group.instance.id`): a restarted process with the same id takes
    /// its partitions back at once instead of waiting for the dead member's session to expire.
    /// Give each process its own stable id (e.g. the pod name). Default empty (dynamic).
    /// Real Kafka only: Tansu 0.6.0 never evicts a dead static member.
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
        let bad = |field: &'static str, reason: String| Err(Error::Config { field, reason });
        if self.group_id.trim().is_empty() {
            return bad("consumer.group_id", "must not be empty".into());
        }
        if !self.metrics_listen.is_empty()
            && self.metrics_listen.parse::<std::net::SocketAddr>().is_err()
        {
            return bad(
                "consumer.metrics_listen",
                format!(
                    "{:?} is not HOST:PORT (an IP address and a port)",
                    self.metrics_listen
                ),
            );
        }
        if !(1..=1_000_000).contains(&self.batch_max_rows) {
            return bad(
                "consumer.batch_max_rows",
                format!("{} is not in 1..=1000000", self.batch_max_rows),
            );
        }
        if self.batch_max_bytes < 1024 {
            return bad(
                "consumer.batch_max_bytes",
                format!("{} is below 1024", self.batch_max_bytes),
            );
        }
        if self.batch_max_wait.is_zero() || self.batch_max_wait > Duration::from_secs(300) {
            return bad(
                "consumer.batch_max_wait",
                "must be between 1ms and 300s".into(),
            );
        }
        if self.max_pending_bytes < self.batch_max_bytes {
            return bad(
                "consumer.max_pending_bytes",
                format!(
                    "{} is below consumer.batch_max_bytes ({})",
                    self.max_pending_bytes, self.batch_max_bytes
                ),
            );
        }
        if self.max_message_bytes == 0 {
            return bad("consumer.max_message_bytes", "must be positive".into());
        }
        if self.plans_refresh < Duration::from_millis(100) {
            return bad("consumer.plans_refresh", "must be at least 100ms".into());
        }
        if self.retry_initial_backoff.is_zero() {
            return bad("consumer.retry_initial_backoff", "must be positive".into());
        }
        if self.retry_max_backoff < self.retry_initial_backoff {
            return bad(
                "consumer.retry_max_backoff",
                "must be at least consumer.retry_initial_backoff".into(),
            );
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&self.session_timeout) {
            return bad(
                "consumer.session_timeout",
                "must be between 1s and 300s".into(),
            );
        }
        if self.fetch_queue_kbytes == 0 {
            return bad("consumer.fetch_queue_kbytes", "must be positive".into());
        }
        if !(Duration::from_millis(1)..=Duration::from_secs(30)).contains(&self.fetch_wait_max) {
            return bad(
                "consumer.fetch_wait_max",
                "must be between 1ms and 30s".into(),
            );
        }
        if !matches!(self.auto_offset_reset.as_str(), "earliest" | "latest") {
            return bad(
                "consumer.auto_offset_reset",
                format!("{:?} is not earliest or latest", self.auto_offset_reset),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        SinkConfig::default().validate().unwrap();
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
