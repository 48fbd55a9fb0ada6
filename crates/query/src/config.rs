//! Query API settings (`[api]` in the config file).

use std::time::Duration;

use auditlog_settings::{check, Renamed};
use serde::{Deserialize, Serialize};

use crate::Error;

/// How list, count and export reads collapse producer duplicates (same `event_id`) that
/// ClickHouse has not merged yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dedup {
    /// `SELECT ... FROM events FINAL`.
    Final,
    /// `... ORDER BY time, event_id LIMIT 1 BY event_id`.
    LimitBy,
}

/// HTTP API settings (`[api]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address of the API and the dashboard (`auditlog serve --listen` overrides it).
    /// Default `127.0.0.1:8080`.
    pub listen: String,
    /// Admin bearer token (plans, tokens). Empty disables the admin endpoints (every admin
    /// request is then a 401); otherwise at least 16 characters. Compared in constant time
    /// (SHA-256 digests). Default empty.
    pub admin_token: String,
    /// Key that signs pagination cursors (HMAC-SHA-256). Empty: a random key per process, so
    /// cursors do not survive a restart and are not valid on another instance; set the same
    /// value on every instance behind a load balancer. Default empty.
    pub cursor_secret: String,
    /// How long a verified workspace token is trusted without asking ClickHouse again (at most
    /// `10s`). A revoked token stops working at once on the server that revoked it and within
    /// this time everywhere else. `0s` checks every request. Default `2s`. (Replaces
    /// `token_cache_ms`.)
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub token_cache: Duration,
    /// Deadline of a request's ClickHouse work, from the request head to the response head:
    /// token verification and reads (exports: up to the first row; the stream then runs to
    /// completion). Past it the answer is `503 unavailable` with `Retry-After`. Also sent to
    /// ClickHouse as `max_execution_time`. `100ms` to `10m`. Default `30s`. (Replaces
    /// `query_timeout_ms`.)
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub query_timeout: Duration,
    /// Deadline of the ClickHouse check of `/health` and `/health/ready`; past it they answer
    /// 503 naming the check. `100ms` to `query_timeout`. Default `1s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub health_timeout: Duration,
    /// How long a connection may take to send a request head once it has sent its first byte
    /// (half-sent heads are closed after it). `100ms` to `5m`. Default `10s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub header_read_timeout: Duration,
    /// How long a connection may stay idle: a new one before its first byte, a keep-alive one
    /// between requests, and one whose client stopped reading the response (a blocked write).
    /// Idle connections are closed after it; a request body that stalls this long fails (`400`
    /// naming `body`). `100ms` to `1h`. Default `60s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub idle_timeout: Duration,
    /// Most connections open at once on `listen`. At the cap, new connections wait in the
    /// listen backlog until one closes; open ones keep working. At startup it is lowered (with
    /// a warning) to what the file-descriptor limit allows. Default `4096`.
    pub max_connections: usize,
    /// After SIGTERM/SIGINT, how long requests in flight may take to finish before their
    /// connections are cut. Default `30s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub shutdown_timeout: Duration,
    /// Separate listen address for `/metrics`; when set, `/metrics` is served only there (the
    /// main listener answers 404 for it). Empty: `/metrics` on `listen`. Default empty.
    pub metrics_listen: String,
    /// Duplicate collapsing on reads: `limit_by` (`LIMIT 1 BY event_id`, a two-step page read)
    /// or `final` (`FROM events FINAL`); see `BENCHMARKS.md`, "Query API". Default `limit_by`
    /// (FINAL was several times slower on 10M rows).
    pub dedup: Dedup,
    // Failed authentications: the negative token cache and the per-client limit.
    /// How long a workspace token that did not verify (unknown, revoked or expired) is
    /// remembered, so that presenting it again is answered 401 without asking ClickHouse. A
    /// token created by this server works at once; one created elsewhere (`auditlog token
    /// create`, another instance) cannot have been presented before it existed. `0s` turns
    /// it off; at most `60s`. Default `5s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub unknown_token_cache: Duration,
    /// Failed authentications (401 answers) one client may have in a row before its requests
    /// to `/v1/...` are answered 429 with `Retry-After`, without asking ClickHouse. A client
    /// is a source IP address (IPv6: its /64). `0` turns the limit off. Default `20`.
    pub auth_failure_burst: u32,
    /// Once the burst is used up, one more failed authentication is allowed per this
    /// interval (the sustained rate). `10ms` to `1h`. Default `1s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub auth_failure_interval: Duration,
    // HTTP ingest (`POST /v1/ingest`, docs/ingest.md).
    /// Whether `POST /v1/ingest` is served. When on, `auditlog serve` also connects a Kafka
    /// producer (`[kafka]`, `[producer]`) in the background; until it is connected ingest
    /// answers `503`. Off: the route answers `404`. Default `true`.
    pub ingest_enabled: bool,
    /// Largest ingest request body in bytes (`413 payload_too_large` above it; the body is read
    /// with this limit, never buffered beyond it). `1024` to `268435456` (256 MiB). Default
    /// `5242880` (5 MiB).
    pub ingest_max_body_bytes: usize,
    /// Most events (non-blank NDJSON lines) in one ingest request (`413 payload_too_large`
    /// above it, nothing published). `1` to `100000`. Default `1000`.
    pub ingest_max_lines: usize,
    /// Longest an ingest request waits for the broker to acknowledge its events; those not
    /// acknowledged by then are reported `failed` (`503`; they may still be stored, so retry
    /// them with the same `event_id`). `100ms` to `5m`. Default `10s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub ingest_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_token: String::new(),
            cursor_secret: String::new(),
            token_cache: Duration::from_secs(2),
            query_timeout: Duration::from_secs(30),
            health_timeout: Duration::from_secs(1),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            shutdown_timeout: Duration::from_secs(30),
            metrics_listen: String::new(),
            dedup: Dedup::LimitBy,
            unknown_token_cache: Duration::from_secs(5),
            auth_failure_burst: 20,
            auth_failure_interval: Duration::from_secs(1),
            ingest_enabled: true,
            ingest_max_body_bytes: 5 * 1024 * 1024,
            ingest_max_lines: 1000,
            ingest_timeout: Duration::from_secs(10),
        }
    }
}

impl ApiConfig {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_auth_failures()?;
        self.validate_ingest()?;
        check::socket_addr("api.listen", &self.listen, "127.0.0.1:8080")?;
        check::ensure(
            self.admin_token.is_empty() || self.admin_token.len() >= 16,
            "api.admin_token",
            "must be empty (admin endpoints off) or at least 16 characters",
        )?;
        check::ensure(
            self.token_cache <= Duration::from_secs(10),
            "api.token_cache",
            "at most 10s (revocation must apply within seconds)",
        )?;
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        check::between("api.query_timeout", self.query_timeout, ms(100), s(600))?;
        check::between(
            "api.health_timeout",
            self.health_timeout,
            ms(100),
            self.query_timeout,
        )?;
        check::between(
            "api.header_read_timeout",
            self.header_read_timeout,
            ms(100),
            s(300),
        )?;
        check::between("api.idle_timeout", self.idle_timeout, ms(100), s(3600))?;
        check::between("api.shutdown_timeout", self.shutdown_timeout, s(0), s(3600))?;
        check::in_range("api.max_connections", self.max_connections, 1..=1_000_000)?;
        if !self.metrics_listen.is_empty() {
            check::socket_addr(
                "api.metrics_listen",
                &self.metrics_listen,
                "127.0.0.1:9090 (or empty)",
            )?;
            check::ensure(
                self.metrics_listen != self.listen,
                "api.metrics_listen",
                "must differ from api.listen (empty serves /metrics there)",
            )?;
        }
        Ok(())
    }

    /// Old setting names that are no longer accepted, and what replaced them. A config that
    /// still uses one fails to load with the new name in the error.
    pub const RENAMED: &'static [Renamed] = &[
        Renamed {
            section: "api",
            old: "token_cache_ms",
            hint: "renamed to api.token_cache, a duration such as \"2s\"",
        },
        Renamed {
            section: "api",
            old: "query_timeout_ms",
            hint: "renamed to api.query_timeout, a duration such as \"30s\"",
        },
    ];

    /// The settings of HTTP ingest.
    fn validate_ingest(&self) -> Result<(), Error> {
        check::in_range(
            "api.ingest_max_body_bytes",
            self.ingest_max_body_bytes,
            1024..=256 * 1024 * 1024,
        )?;
        check::in_range("api.ingest_max_lines", self.ingest_max_lines, 1..=100_000)?;
        check::between(
            "api.ingest_timeout",
            self.ingest_timeout,
            Duration::from_millis(100),
            Duration::from_secs(300),
        )?;
        Ok(())
    }

    /// The settings of failed authentications.
    fn validate_auth_failures(&self) -> Result<(), Error> {
        check::ensure(
            self.unknown_token_cache <= Duration::from_secs(60),
            "api.unknown_token_cache",
            "at most 60s (a token created on another server must work soon)",
        )?;
        check::between(
            "api.auth_failure_interval",
            self.auth_failure_interval,
            Duration::from_millis(10),
            Duration::from_secs(3600),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        ApiConfig::default().validate().unwrap();
        let bad = ApiConfig {
            listen: "nope".into(),
            ..ApiConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("api.listen"));
        let bad = ApiConfig {
            admin_token: "short".into(),
            ..ApiConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("api.admin_token"));
        let s = Duration::from_secs;
        for (bad, field) in [
            (
                ApiConfig {
                    token_cache: s(11),
                    ..ApiConfig::default()
                },
                "api.token_cache",
            ),
            (
                ApiConfig {
                    query_timeout: Duration::from_millis(50),
                    ..ApiConfig::default()
                },
                "api.query_timeout",
            ),
            (
                ApiConfig {
                    health_timeout: s(31),
                    ..ApiConfig::default()
                },
                "api.health_timeout",
            ),
            (
                ApiConfig {
                    header_read_timeout: Duration::ZERO,
                    ..ApiConfig::default()
                },
                "api.header_read_timeout",
            ),
            (
                ApiConfig {
                    idle_timeout: s(7200),
                    ..ApiConfig::default()
                },
                "api.idle_timeout",
            ),
            (
                ApiConfig {
                    max_connections: 0,
                    ..ApiConfig::default()
                },
                "api.max_connections",
            ),
            (
                ApiConfig {
                    ingest_max_body_bytes: 10,
                    ..ApiConfig::default()
                },
                "api.ingest_max_body_bytes",
            ),
            (
                ApiConfig {
                    ingest_max_lines: 0,
                    ..ApiConfig::default()
                },
                "api.ingest_max_lines",
            ),
            (
                ApiConfig {
                    ingest_timeout: s(301),
                    ..ApiConfig::default()
                },
                "api.ingest_timeout",
            ),
            (
                ApiConfig {
                    metrics_listen: "nope".into(),
                    ..ApiConfig::default()
                },
                "api.metrics_listen",
            ),
            (
                ApiConfig {
                    metrics_listen: "127.0.0.1:8080".into(),
                    ..ApiConfig::default()
                },
                "api.metrics_listen",
            ),
        ] {
            let msg = bad.validate().unwrap_err().to_string();
            assert!(msg.contains(field), "{field}: {msg}");
        }
    }

    #[test]
    fn failed_authentication_settings_are_durations_and_checked() {
        let cfg: ApiConfig = serde_json::from_value(serde_json::json!({
            "unknown_token_cache": "2s",
            "auth_failure_burst": 3,
            "auth_failure_interval": "250ms",
        }))
        .unwrap();
        assert_eq!(cfg.unknown_token_cache, Duration::from_secs(2));
        assert_eq!(cfg.auth_failure_interval, Duration::from_millis(250));
        cfg.validate().unwrap();
        for (field, value) in [
            ("unknown_token_cache", "61s"),
            ("auth_failure_interval", "0s"),
            ("auth_failure_interval", "2h"),
        ] {
            let cfg: ApiConfig =
                serde_json::from_value(serde_json::json!({ field: value })).unwrap();
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("api.{field}")), "{e}");
        }
    }
}
