//! Stream worker settings (`[streams]` in the config file). Every field has a default; the
//! checks name the field.

use std::time::Duration;

use auditlog_settings::{check, BadSetting};
use serde::{Deserialize, Serialize};

/// `auditlog stream-worker` settings (`[streams]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// Address of the worker's `/metrics` and `/health` endpoints; empty disables them.
    /// Default `127.0.0.1:8082`.
    pub listen: String,
    /// This worker's id in `stream_workers` (stream ownership). Empty: a new random id per
    /// process (`<host>-<random>`), which is what a restarted worker should get. Default empty.
    pub worker_id: String,
    /// How often the worker writes its heartbeat. `100ms` to `worker_expiry / 2`. Default `2s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub heartbeat: Duration,
    /// A worker whose last heartbeat is older than this is dead: its streams move to the
    /// others. A worker that could not heartbeat for this long stops delivering on its own.
    /// `1s` to `5m`. Default `10s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub worker_expiry: Duration,
    /// How often the worker re-reads the streams, their cursors (replays) and the live workers,
    /// and starts or stops its per-stream tasks. `100ms` to `1m`. Default `2s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub refresh: Duration,
    /// Deadline of one delivery request (connect included). A worker that gains a stream
    /// waits `worker_expiry + request_timeout` before delivering it (takeover grace).
    /// `100ms` to `5m`. Default `10s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub request_timeout: Duration,
    /// When a caught-up stream is woken by new events, it waits this long before reading them,
    /// so that a busy workspace sends fuller batches. `0s` to `5s`. Default `100ms`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub batch_wait: Duration,
    /// First wait before retrying a failed delivery; doubles per attempt, with full jitter.
    /// `10ms` to `retry_max_backoff`. Default `1s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub retry_initial_backoff: Duration,
    /// Longest wait between retries of a delivery (a destination's `Retry-After` may ask for
    /// longer, up to `1h`). Default `5m`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub retry_max_backoff: Duration,
    /// A stream failing this long without one success is paused by the worker (desired
    /// `paused`, with the reason); `auditlog stream resume` restarts it from its cursor.
    /// `1s` to `30d`. Default `24h`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub auto_pause_after: Duration,
    /// Most rendered bytes of batches being read, rendered or sent at once, over all streams
    /// (memory bound). At least 1 MiB. Default `67108864` (64 MiB).
    pub max_inflight_bytes: usize,
    /// Most feed queries to ClickHouse at once, over all streams. `1` to `256`. Default `8`.
    pub max_feed_queries: usize,
    /// How often acknowledged cursors are saved (one insert for all streams). A crash
    /// redelivers at most the batches acknowledged since the last save. `100ms` to `1m`.
    /// Default `1s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub cursor_flush: Duration,
    /// How often stream statuses (state, last error, counts, lag) are saved (one insert).
    /// `100ms` to `5m`. Default `5s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub status_flush: Duration,
    /// After SIGTERM/SIGINT, how long deliveries in flight may take to finish before the last
    /// cursors are saved. `0s` to `5m`. Default `10s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub shutdown_timeout: Duration,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8082".into(),
            worker_id: String::new(),
            heartbeat: Duration::from_secs(2),
            worker_expiry: Duration::from_secs(10),
            refresh: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            batch_wait: Duration::from_millis(100),
            retry_initial_backoff: Duration::from_secs(1),
            retry_max_backoff: Duration::from_secs(300),
            auto_pause_after: Duration::from_secs(24 * 3600),
            max_inflight_bytes: 64 * 1024 * 1024,
            max_feed_queries: 8,
            cursor_flush: Duration::from_secs(1),
            status_flush: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl StreamsConfig {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), BadSetting> {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        if !self.listen.is_empty() {
            check::socket_addr("streams.listen", &self.listen, "127.0.0.1:8082 (or empty)")?;
        }
        check::ensure(
            self.worker_id.chars().all(|c| c.is_ascii_graphic()) && self.worker_id.len() <= 128,
            "streams.worker_id",
            "at most 128 printable ASCII characters without spaces",
        )?;
        check::between("streams.worker_expiry", self.worker_expiry, s(1), s(300))?;
        check::between(
            "streams.heartbeat",
            self.heartbeat,
            ms(100),
            self.worker_expiry / 2,
        )?;
        check::between("streams.refresh", self.refresh, ms(100), s(60))?;
        check::between(
            "streams.request_timeout",
            self.request_timeout,
            ms(100),
            s(300),
        )?;
        check::between("streams.batch_wait", self.batch_wait, Duration::ZERO, s(5))?;
        check::between(
            "streams.retry_max_backoff",
            self.retry_max_backoff,
            ms(10),
            s(3600),
        )?;
        check::between(
            "streams.retry_initial_backoff",
            self.retry_initial_backoff,
            ms(10),
            self.retry_max_backoff,
        )?;
        check::between(
            "streams.auto_pause_after",
            self.auto_pause_after,
            s(1),
            s(30 * 24 * 3600),
        )?;
        check::ensure(
            self.max_inflight_bytes >= 1024 * 1024,
            "streams.max_inflight_bytes",
            format!("must be at least 1048576 (is {})", self.max_inflight_bytes),
        )?;
        check::in_range("streams.max_feed_queries", self.max_feed_queries, 1..=256)?;
        check::between("streams.cursor_flush", self.cursor_flush, ms(100), s(60))?;
        check::between("streams.status_flush", self.status_flush, ms(100), s(300))?;
        check::between(
            "streams.shutdown_timeout",
            self.shutdown_timeout,
            Duration::ZERO,
            s(300),
        )?;
        Ok(())
    }

    /// How long a worker that gains a stream waits before delivering it: the old owner has
    /// seen the new membership (or its own heartbeat expired) and its last request ended.
    pub fn takeover_grace(&self) -> Duration {
        self.worker_expiry + self.request_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        StreamsConfig::default().validate().unwrap();
        let bad = |f: fn(&mut StreamsConfig)| {
            let mut c = StreamsConfig::default();
            f(&mut c);
            c.validate().unwrap_err().field
        };
        assert_eq!(
            bad(|c| c.heartbeat = Duration::from_secs(6)),
            "streams.heartbeat"
        );
        assert_eq!(bad(|c| c.listen = "nope".into()), "streams.listen");
        assert_eq!(bad(|c| c.max_feed_queries = 0), "streams.max_feed_queries");
        assert_eq!(
            bad(|c| c.max_inflight_bytes = 10),
            "streams.max_inflight_bytes"
        );
        assert_eq!(
            bad(|c| c.retry_initial_backoff = Duration::from_secs(600)),
            "streams.retry_initial_backoff"
        );
        assert_eq!(bad(|c| c.worker_id = "a b".into()), "streams.worker_id");
        assert_eq!(
            StreamsConfig::default().takeover_grace(),
            Duration::from_secs(20)
        );
    }
}
