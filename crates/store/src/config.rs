//! How to reach ClickHouse.

use std::fmt;
use std::path::PathBuf;

use auditlog_settings::{check, BadSetting};
use serde::{Deserialize, Serialize};

use crate::failover::Backends;
use crate::layout::Layout;
use crate::tls::{self, SetupError, TlsFiles};
use crate::{Error, Result};

/// ClickHouse connection settings (`[clickhouse]` in the config file). `Debug` redacts the
/// password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP interface URL. Default `http://127.0.0.1:8123`.
    pub url: String,
    /// Further URLs of the same cluster (other replicas), same scheme as `url`: a new
    /// connection goes to the first of `url` and these that accepts it, and stays with it until
    /// it fails. Default `[]`. In the environment a JSON array:
    /// `AUDITLOG_CLICKHOUSE__FAILOVER_URLS='["http://ch2:8123"]'`.
    pub failover_urls: Vec<String>,
    /// Name of the `remote_servers` cluster the tables live on. Empty (default): one server, as
    /// before. Set: `auditlog migrate` creates replicated tables `ON CLUSTER` and a
    /// `Distributed` `events` table sharded by workspace (docs/cluster.md); must match how the
    /// database was created.
    pub cluster: String,
    /// On a cluster: replicas that must have each insert before it is acknowledged
    /// (`insert_quorum`). 0 (default): acknowledged once one replica has it; the others fetch it
    /// within milliseconds. Set it (e.g. 2 of 3 replicas) to survive losing a replica's disk
    /// right after an insert; with quorum = replicas, inserts stop while one is down.
    pub insert_quorum: u32,
    /// Database holding the audit tables (created by `auditlog migrate`). Default `auditlog`.
    pub database: String,
    /// User. Default `default`.
    pub user: String,
    /// Password. Default empty. `AUDITLOG_CLICKHOUSE__PASSWORD` sets it from the environment;
    /// or see `password_file`.
    pub password: String,
    /// File holding the password (surrounding whitespace ignored), e.g. a mounted secret; set
    /// either this or `password`. Default none.
    pub password_file: Option<PathBuf>,
    /// PEM file of the CA certificate(s) that signed the server's certificate, for an
    /// `https://` URL; they replace the built-in Mozilla roots. Default none: the built-in
    /// roots, enough for a server with a public certificate (ClickHouse Cloud).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS, with `client_key_file`. Default none.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file` (PKCS#8, PKCS#1 or SEC1). Default none.
    pub client_key_file: Option<PathBuf>,
    /// Compression of the data sent to and read from ClickHouse: `lz4` (default; saves network
    /// for a ClickHouse on another host) or `none` (a ClickHouse on the same host, where
    /// compressing only costs CPU on both sides).
    pub compression: Compression,
}

/// Transport compression between the client and ClickHouse.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
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
            failover_urls: Vec::new(),
            cluster: String::new(),
            insert_quorum: 0,
            database: "auditlog".into(),
            user: "default".into(),
            password: String::new(),
            password_file: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            compression: Compression::default(),
        }
    }
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("failover_urls", &self.failover_urls)
            .field("cluster", &self.cluster)
            .field("insert_quorum", &self.insert_quorum)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &redacted(&self.password))
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("compression", &self.compression)
            .finish()
    }
}

/// What `Debug` shows of a secret.
fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() {
        ""
    } else {
        "<redacted>"
    }
}

impl ClickHouseConfig {
    fn validate_names(&self) -> Result<(), BadSetting> {
        check::ensure(
            self.url.starts_with("http://") || self.url.starts_with("https://"),
            "clickhouse.url",
            format!("{:?} is not an http:// or https:// URL", self.url),
        )?;
        let scheme = self.url.split("://").next().unwrap_or_default();
        for url in &self.failover_urls {
            check::ensure(
                url.parse::<http::Uri>()
                    .is_ok_and(|u| u.authority().is_some())
                    && url.split("://").next() == Some(scheme),
                "clickhouse.failover_urls",
                format!("{url:?} is not a {scheme}:// URL (the scheme of clickhouse.url)"),
            )?;
        }
        check::ensure(
            self.cluster
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "clickhouse.cluster",
            format!(
                "{:?} must be ASCII letters, digits, _ or - (a remote_servers name)",
                self.cluster
            ),
        )?;
        check::ensure(
            self.insert_quorum == 0 || !self.cluster.is_empty(),
            "clickhouse.insert_quorum",
            "needs clickhouse.cluster (a single server has no replicas to wait for)",
        )?;
        check::ensure(
            !self.database.is_empty()
                && self
                    .database
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "clickhouse.database",
            format!(
                "{:?} must be non-empty ASCII letters, digits or _",
                self.database
            ),
        )
    }

    /// Checks the settings before any client is built: the URL, the database name, and that
    /// the password and TLS files exist and parse (the error names the setting).
    pub fn validate(&self) -> Result<()> {
        self.validate_names()?;
        let tls_set = self.ca_file.is_some()
            || self.client_cert_file.is_some()
            || self.client_key_file.is_some();
        check::ensure(
            !tls_set || self.url.starts_with("https://"),
            "clickhouse.url",
            format!(
                "{:?} is not https:// although clickhouse.ca_file or \
                 clickhouse.client_cert_file is set",
                self.url
            ),
        )?;
        self.password().map_err(Error::from)?;
        if self.url.starts_with("https://") {
            tls::client_config(self.tls_files()).map_err(Error::from)?;
        }
        Ok(())
    }

    /// The password: `password`, or the content of `password_file`.
    fn password(&self) -> Result<String, SetupError> {
        let Some(path) = &self.password_file else {
            return Ok(self.password.clone());
        };
        let field = "clickhouse.password_file";
        if !self.password.is_empty() {
            return Err(SetupError {
                field,
                message: "set either clickhouse.password or clickhouse.password_file, not both"
                    .into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| SetupError {
            field,
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        Ok(text.trim().to_owned())
    }

    /// `host:port` of the URL (for messages).
    fn host(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest)
    }

    fn tls_files(&self) -> TlsFiles<'_> {
        TlsFiles {
            ca_file: self.ca_file.as_deref(),
            client_cert_file: self.client_cert_file.as_deref(),
            client_key_file: self.client_key_file.as_deref(),
        }
    }

    /// A client bound to the configured database.
    pub fn client(&self) -> clickhouse::Client {
        self.server_client().with_database(&self.database)
    }

    /// A client not bound to any database (for `CREATE DATABASE`).
    ///
    /// It reads the password and TLS files now; if one cannot be used (call
    /// [`validate`](Self::validate) first to fail at startup instead), every request fails
    /// with an error naming the setting.
    pub fn server_client(&self) -> clickhouse::Client {
        let password = self.password();
        let setup = password
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|_| tls::client_config(self.tls_files()));
        let c = tls::client(setup, self.backends())
            .with_url(&self.url)
            .with_user(&self.user)
            .with_compression(match self.compression {
                Compression::Lz4 => clickhouse::Compression::Lz4,
                Compression::None => clickhouse::Compression::None,
            });
        let c = match password {
            Ok(p) if !p.is_empty() => c.with_password(p),
            _ => c,
        };
        self.cluster_options(c)
    }

    /// With failover URLs: every URL, `url` first (unparsable ones left out; `validate`
    /// names them).
    fn backends(&self) -> Option<Backends> {
        if self.failover_urls.is_empty() {
            return None;
        }
        let uris: Vec<http::Uri> = std::iter::once(&self.url)
            .chain(&self.failover_urls)
            .filter_map(|u| u.parse().ok())
            .collect();
        (!uris.is_empty()).then(|| Backends::new(uris))
    }

    /// On a cluster, inserts into the `Distributed` `events` table return only once every
    /// shard has the rows (not after queueing them locally), so an acknowledged insert is
    /// stored and its deduplication token checked; Keeper failures end an insert after three
    /// quick retries; `insert_quorum` when set.
    fn cluster_options(&self, c: clickhouse::Client) -> clickhouse::Client {
        if self.cluster.is_empty() {
            return c;
        }
        let c = c
            .with_setting("distributed_foreground_insert", "1")
            // A Keeper outage surfaces within about a second (the consumer then pauses and
            // retries with the same token, reporting it in /health), instead of the insert
            // waiting inside ClickHouse through its default Keeper retries (about 2 minutes).
            .with_setting("insert_keeper_max_retries", "3")
            .with_setting("insert_keeper_retry_initial_backoff_ms", "100")
            .with_setting("insert_keeper_retry_max_backoff_ms", "500");
        if self.insert_quorum > 0 {
            c.with_setting("insert_quorum", self.insert_quorum.to_string())
        } else {
            c
        }
    }

    /// The layout `auditlog migrate` creates for these settings.
    pub fn layout(&self) -> Layout {
        Layout::configured(&self.cluster)
    }

    /// For an `https://` URL: one `SELECT 1`, failing with the setting to check when the TLS
    /// handshake fails (unknown CA, wrong host name, client certificate refused). Any other
    /// failure (ClickHouse down, wrong password) is left to the caller's own retries.
    pub async fn check_tls(&self) -> Result<()> {
        if !self.url.starts_with("https://") {
            return Ok(());
        }
        match self
            .server_client()
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
        {
            Err(e) => match tls::client_setup_error(&e, self.host()) {
                Some(setup) => Err(setup.into()),
                None => Ok(()),
            },
            Ok(_) => Ok(()),
        }
    }
}

impl ClickHouseConfig {
    /// At startup: the first request ([`check_tls`](Self::check_tls)), then, when the database
    /// already has its `events` table, that it was created for the layout `clickhouse.cluster`
    /// says (a mismatch stops startup naming the setting). ClickHouse being down is left to the
    /// caller's retries, as for `check_tls`.
    pub async fn check_startup(&self) -> Result<()> {
        self.check_tls().await?;
        match Layout::detect(&self.client()).await {
            Ok(Some(found)) => {
                crate::migrate::check_same_layout(&found, &self.layout(), &self.database)
            }
            Ok(None) => Ok(()),
            Err(Error::Config(bad)) => Err(Error::Config(bad)),
            Err(_) => Ok(()),
        }
    }
}

impl From<SetupError> for Error {
    fn from(e: SetupError) -> Self {
        Error::Config(BadSetting::new(e.field, e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_password() {
        let cfg = ClickHouseConfig {
            password: "hunter2".into(),
            ..Default::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn password_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let cfg = ClickHouseConfig {
            password_file: Some(file.clone()),
            ..Default::default()
        };
        cfg.validate().unwrap();
        assert_eq!(cfg.password().unwrap(), "s3cret");

        let both = ClickHouseConfig {
            password: "x".into(),
            ..cfg.clone()
        };
        let msg = both.validate().unwrap_err().to_string();
        assert!(msg.contains("clickhouse.password_file"), "{msg}");

        let missing = ClickHouseConfig {
            password_file: Some(dir.path().join("absent")),
            ..Default::default()
        };
        let msg = missing.validate().unwrap_err().to_string();
        assert!(
            msg.contains("clickhouse.password_file") && msg.contains("absent"),
            "{msg}"
        );
    }

    #[test]
    fn tls_files_need_https_and_must_parse() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let plain = ClickHouseConfig {
            ca_file: Some(bad.clone()),
            ..Default::default()
        };
        let msg = plain.validate().unwrap_err().to_string();
        assert!(msg.contains("clickhouse.url"), "{msg}");

        let https = ClickHouseConfig {
            url: "https://127.0.0.1:8443".into(),
            ..plain
        };
        let msg = https.validate().unwrap_err().to_string();
        assert!(msg.contains("clickhouse.ca_file"), "{msg}");

        let builtin_roots = ClickHouseConfig {
            url: "https://example.clickhouse.cloud:8443".into(),
            ..Default::default()
        };
        builtin_roots.validate().unwrap();
    }

    #[tokio::test]
    async fn a_client_with_an_unreadable_file_fails_naming_it() {
        let cfg = ClickHouseConfig {
            url: "https://127.0.0.1:1".into(),
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let err = cfg
            .client()
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
            .unwrap_err();
        let setup = tls::client_setup_error(&err, "h").expect("a setup error in the chain");
        assert_eq!(setup.field, "clickhouse.ca_file");
    }
}
