//! Relay settings (`[relay]` in the config file); the checks name the field.

use std::time::Duration;

use auditlog_settings::{check, BadSetting};
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
    ///
    /// An empty `database_url` passes here (the other commands read the same file and do not
    /// need it); [`RelayConfig::validate_for_run`] requires it.
    pub fn validate(&self) -> Result<(), BadSetting> {
        if !self.database_url.is_empty() {
            check_database_url(&self.database_url)?;
        }
        if !self.listen.is_empty() {
            check::socket_addr("relay.listen", &self.listen, "127.0.0.1:8085 (or empty)")?;
        }
        check::in_range("relay.batch_rows", self.batch_rows, 1..=100_000)?;
        check::in_range("relay.max_buckets", self.max_buckets, 1..=64)?;
        check::between(
            "relay.poll_interval",
            self.poll_interval,
            Duration::from_millis(10),
            Duration::from_secs(60),
        )?;
        check::in_range("relay.max_connections", self.max_connections, 2..=64)?;
        Ok(())
    }

    /// [`RelayConfig::validate`], and `database_url` present: what `auditlog relay` needs.
    pub fn validate_for_run(&self) -> Result<(), BadSetting> {
        check::not_blank("relay.database_url", &self.database_url).map_err(|_| {
            BadSetting::new(
                "relay.database_url",
                "must be set (postgres://... or mysql://...; or --database-url)",
            )
        })?;
        self.validate()
    }
}

/// The scheme names the database kind, and the rest must parse as that driver's URL (the
/// password is never echoed).
fn check_database_url(url: &str) -> Result<(), BadSetting> {
    use std::str::FromStr;
    const FIELD: &str = "relay.database_url";
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    let parsed = match scheme {
        "postgres" | "postgresql" => sqlx::postgres::PgConnectOptions::from_str(url).map(|_| ()),
        "mysql" | "mariadb" => {
            // sqlx knows only `mysql://`; `mariadb://` is the same protocol.
            let url = url.replacen("mariadb://", "mysql://", 1);
            sqlx::mysql::MySqlConnectOptions::from_str(&url).map(|_| ())
        }
        _ => {
            return Err(BadSetting::new(
                FIELD,
                "must start with postgres://, postgresql://, mysql:// or mariadb://",
            ))
        }
    };
    parsed.map_err(|e| {
        BadSetting::new(
            FIELD,
            format!("not a valid {scheme} URL: {}", redact(&e.to_string(), url)),
        )
    })
}

/// `text` without the URL's password, should the driver quote it.
fn redact(text: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty());
    match password {
        Some(p) => text.replace(p, "***"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_each_bad_value_names_its_field() {
        RelayConfig::default().validate().unwrap();
        let bad = [
            (
                RelayConfig {
                    database_url: "sqlite://x.db".into(),
                    ..Default::default()
                },
                "relay.database_url",
            ),
            (
                RelayConfig {
                    database_url: "postgres://u:p@host:notaport/db".into(),
                    ..Default::default()
                },
                "relay.database_url",
            ),
            (
                RelayConfig {
                    listen: "nowhere".into(),
                    ..Default::default()
                },
                "relay.listen",
            ),
            (
                RelayConfig {
                    batch_rows: 0,
                    ..Default::default()
                },
                "relay.batch_rows",
            ),
            (
                RelayConfig {
                    max_buckets: 65,
                    ..Default::default()
                },
                "relay.max_buckets",
            ),
            (
                RelayConfig {
                    poll_interval: Duration::from_millis(1),
                    ..Default::default()
                },
                "relay.poll_interval",
            ),
            (
                RelayConfig {
                    max_connections: 1,
                    ..Default::default()
                },
                "relay.max_connections",
            ),
        ];
        for (cfg, field) in bad {
            assert_eq!(cfg.validate().unwrap_err().field, field, "{cfg:?}");
        }
    }

    #[test]
    fn run_needs_a_database_url_and_accepts_both_kinds() {
        let missing = RelayConfig::default().validate_for_run().unwrap_err();
        assert_eq!(missing.field, "relay.database_url");
        for url in [
            "postgres://u:p@127.0.0.1:5432/db",
            "postgresql://localhost/db",
            "mysql://u:p@127.0.0.1:3306/db",
            "mariadb://u@localhost/db",
        ] {
            let cfg = RelayConfig {
                database_url: url.into(),
                ..Default::default()
            };
            cfg.validate_for_run().unwrap();
        }
    }

    #[test]
    fn a_bad_url_error_does_not_show_the_password() {
        let cfg = RelayConfig {
            database_url: "postgres://u:s3cret@host:99999999/db".into(),
            ..Default::default()
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.starts_with("relay.database_url"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
