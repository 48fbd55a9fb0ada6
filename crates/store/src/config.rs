//! How to reach ClickHouse.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// ClickHouse connection settings (`[clickhouse]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP interface URL. Default `http://127.0.0.1:8123`.
    pub url: String,
    /// Database holding the audit tables (created by `auditlog migrate`). Default `auditlog`.
    pub database: String,
    /// User. Default `default`.
    pub user: String,
    /// Password. Default empty.
    pub password: String,
    /// Compression of the data sent to and read from ClickHouse: `lz4` (default; saves network
    /// for a ClickHouse on another host) or `none` (a ClickHouse on the same host, where
    /// compressing only costs CPU on both sides).
    pub compression: Compression,
}

/// Transport compression between the client and ClickHouse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// LZ4 blocks, ClickHouse's native compression.
    #[default]
    Lz4,
    /// Plain RowBinary and results.
    None,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "auditlog".into(),
            user: "default".into(),
            password: String::new(),
            compression: Compression::default(),
        }
    }
}

impl ClickHouseConfig {
    /// Checks the settings before any client is built.
    pub fn validate(&self) -> Result<()> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Error::Config {
                field: "clickhouse.url",
                reason: format!("{:?} is not an http:// or https:// URL", self.url),
            });
        }
        if self.database.is_empty()
            || !self
                .database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::Config {
                field: "clickhouse.database",
                reason: format!(
                    "{:?} must be non-empty ASCII letters, digits or _",
                    self.database
                ),
            });
        }
        Ok(())
    }

    /// A client bound to the configured database.
    pub fn client(&self) -> clickhouse::Client {
        self.server_client().with_database(&self.database)
    }

    /// A client not bound to any database (for `CREATE DATABASE`).
    pub fn server_client(&self) -> clickhouse::Client {
        let c = clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_compression(match self.compression {
                Compression::Lz4 => clickhouse::Compression::Lz4,
                Compression::None => clickhouse::Compression::None,
            });
        if self.password.is_empty() {
            c
        } else {
            c.with_password(&self.password)
        }
    }
}
