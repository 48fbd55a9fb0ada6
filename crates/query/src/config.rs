//! Query API settings (`[api]` in the config file).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// How list, count and export reads collapse producer duplicates (same `event_id`) that
/// ClickHouse has not merged yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dedup {
    /// `SELECT ... FROM events FINAL`.
    Final,
    /// `... ORDER BY time, event_id LIMIT 1 BY event_id`.
    LimitBy,
}

/// HTTP API settings (`[api]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address. Default `127.0.0.1:8080`.
    pub listen: String,
    /// Admin bearer token (plans, tokens). Empty disables the admin endpoints (every admin
    /// request is then a 401). Default empty.
    pub admin_token: String,
    /// Key that signs pagination cursors (HMAC-SHA-256). Empty: a random key per process, so
    /// cursors do not survive a restart and are not valid on another instance; set the same
    /// value on every instance behind a load balancer. Default empty.
    pub cursor_secret: String,
    /// How long a verified workspace token is trusted without asking ClickHouse again, in
    /// milliseconds. A revoked token stops working at most this long after the revocation.
    /// 0 checks every request. Default `2000`.
    pub token_cache_ms: u64,
    /// Deadline of one ClickHouse read, in milliseconds (exports: for the first row; the
    /// stream then runs to completion). Default `30000`.
    pub query_timeout_ms: u64,
    /// Duplicate collapsing on reads: `final` or `limit_by` (see `BENCHMARKS.md`, "Query API").
    /// Default `limit_by` (FINAL was several times slower on 10M rows).
    pub dedup: Dedup,
    // Failed authentications: the negative token cache and the per-client limit.
    /// How long a workspace token that did not verify (unknown, revoked or expired) is
    /// remembered, so that presenting it again is answered 401 without asking ClickHouse. A
    /// token created by this server works at once; one created elsewhere (`auditlog token
    /// create`, another instance) cannot have been presented before it existed. `0s` turns
    /// it off; at most `60s`. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub unknown_token_cache: Duration,
    /// Failed authentications (401 answers) one client may have in a row before its requests
    /// to `/v1/...` are answered 429 with `Retry-After`, without asking ClickHouse. A client
    /// is a source IP address (IPv6: its /64). `0` turns the limit off. Default `20`.
    pub auth_failure_burst: u32,
    /// Once the burst is used up, one more failed authentication is allowed per this
    /// interval (the sustained rate). `10ms` to `1h`. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub auth_failure_interval: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_token: String::new(),
            cursor_secret: String::new(),
            token_cache_ms: 2000,
            query_timeout_ms: 30_000,
            dedup: Dedup::LimitBy,
            unknown_token_cache: Duration::from_secs(5),
            auth_failure_burst: 20,
            auth_failure_interval: Duration::from_secs(1),
        }
    }
}

impl ApiConfig {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_auth_failures()?;
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(Error::Config {
                field: "api.listen",
                reason: format!("{:?} is not an address like 127.0.0.1:8080", self.listen),
            });
        }
        if !self.admin_token.is_empty() && self.admin_token.len() < 16 {
            return Err(Error::Config {
                field: "api.admin_token",
                reason: "must be empty (admin endpoints off) or at least 16 characters".into(),
            });
        }
        if self.token_cache_ms > 10_000 {
            return Err(Error::Config {
                field: "api.token_cache_ms",
                reason: "at most 10000 (revocation must apply within seconds)".into(),
            });
        }
        if !(100..=600_000).contains(&self.query_timeout_ms) {
            return Err(Error::Config {
                field: "api.query_timeout_ms",
                reason: "must be 100..=600000".into(),
            });
        }
        Ok(())
    }

    /// The settings of failed authentications (the block at the end of the struct).
    fn validate_auth_failures(&self) -> Result<(), Error> {
        if self.unknown_token_cache > Duration::from_secs(60) {
            return Err(Error::Config {
                field: "api.unknown_token_cache",
                reason: "at most 60s (a token created on another server must work soon)".into(),
            });
        }
        let interval = self.auth_failure_interval;
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&interval) {
            return Err(Error::Config {
                field: "api.auth_failure_interval",
                reason: "must be 10ms..=1h".into(),
            });
        }
        Ok(())
    }

    /// [`Self::token_cache_ms`] as a duration.
    pub fn token_cache(&self) -> Duration {
        Duration::from_millis(self.token_cache_ms)
    }

    /// [`Self::query_timeout_ms`] as a duration.
    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
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
