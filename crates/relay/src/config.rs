//! Relay settings (`[relay]` in the config file); the checks name the field.

use std::time::Duration;

use auditlog_settings::BadSetting;
use serde::{Deserialize, Serialize};

/// `auditlog relay` settings (`[relay]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// The outbox database: `postgres://user:pass@host:5432/db` or
    /// `mysql://user:pass@host:3306/db` (also `mariadb://`). Required by `auditlog relay`.
    pub database_url: String,
    /// Address of the relay's `/metrics` and `/health`; empty disables them.
    /// Default `127.0.0.1:8085`.
    pub listen: String,
    /// Most rows one claim ships. `1` to `100000`. Default `5000`.
    pub batch_rows: u32,
    /// Most buckets (of 64) one claim locks; lower it to spread work over several relays.
    /// `1` to `64`. Default `64`.
    pub max_buckets: u32,
    /// How often the outbox is read when nothing woke the relay: MySQL's latency floor, and
    /// PostgreSQL's safety net besides `NOTIFY`. `10ms` to `1m`. Default `100ms`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub poll_interval: Duration,
    /// Connections of the relay's pool. `2` to `64`. Default `4`.
    pub max_connections: u32,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            listen: "127.0.0.1:8085".into(),
            batch_rows: 5000,
            max_buckets: 64,
            poll_interval: Duration::from_millis(100),
            max_connections: 4,
        }
    }
}

impl RelayConfig {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), BadSetting> {
        todo!("relay helper")
    }
}
