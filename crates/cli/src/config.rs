//! The binary's configuration: defaults, then a TOML file, then `AUDITLOG_*` environment
//! variables (`AUDITLOG_KAFKA__BROKERS` sets `kafka.brokers`). Unknown or invalid settings stop
//! startup with the field named ([`BadSetting`]). The reference of every field and its default
//! is generated from these structs (`auditlog config --defaults`, the tables in README.md and
//! docs/, checked by `cmd::config`'s tests).

use std::path::Path;

use anyhow::{Context as _, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use auditlog_deliver::StreamsConfig;
use auditlog_producer::ProducerConfig;
use auditlog_query::ApiConfig;
use auditlog_relay::RelayConfig;
use auditlog_sequencer::SequencerConfig;
use auditlog_settings::{BadSetting, Renamed};
use auditlog_sink::config::KafkaSettings;
use auditlog_sink::SinkConfig;
use auditlog_store::ClickHouseConfig;
use auditlog_witness::WitnessConfig;

/// The whole configuration, one section per component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[kafka]`: brokers, topics, TLS and SASL, for every Kafka client.
    pub kafka: KafkaSettings,
    /// `[clickhouse]`: server and database.
    pub clickhouse: ClickHouseConfig,
    /// `[producer]`: producer tuning (emit).
    pub producer: ProducerConfig,
    /// `[consumer]`: consumer tuning (consume).
    pub consumer: SinkConfig,
    /// `[api]`: query API (serve).
    pub api: ApiConfig,
    /// `[streams]`: stream delivery (stream-worker).
    pub streams: StreamsConfig,
    /// `[sequencer]`: the tamper-evident log (sequencer).
    pub sequencer: SequencerConfig,
    /// `[witness]`: the witness (witness).
    pub witness: WitnessConfig,
    /// `[relay]`: the transactional outbox's relay (relay).
    pub relay: RelayConfig,
    /// `[log]`: logging.
    pub log: LogConfig,
}

/// Logging (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter: a level (`trace`, `debug`, `info`, `warn`, `error`, `off`) and/or
    /// `target=level` directives, comma-separated (`info,librdkafka=warn`). Default `info`.
    /// Anything else stops startup. `RUST_LOG` overrides it.
    pub level: String,
    /// Write JSON lines instead of text. Default `false`.
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            json: false,
        }
    }
}

impl LogConfig {
    /// Checks `level`: every comma-separated directive must end in a level (a bare word that
    /// is not a level, such as `inf`, would be read as a target name and silence every log).
    pub fn validate(&self) -> Result<(), BadSetting> {
        use std::str::FromStr as _;
        use tracing_subscriber::filter::LevelFilter;
        let field = "log.level";
        let directives: Vec<&str> = self
            .level
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .collect();
        auditlog_settings::check::ensure(
            !directives.is_empty(),
            field,
            "must not be empty (e.g. \"info\" or \"info,librdkafka=warn\")",
        )?;
        for d in directives {
            let level = d.rsplit_once('=').map_or(d, |(_, level)| level);
            auditlog_settings::check::ensure(
                LevelFilter::from_str(level).is_ok(),
                field,
                format!(
                    "{d:?} is not a level (trace, debug, info, warn, error, off) \
                     nor a target=level directive"
                ),
            )?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map_err(|e| BadSetting::new(field, format!("{:?}: {e}", self.level)))?;
        Ok(())
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then `AUDITLOG_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(
                path.exists(),
                "config file {} does not exist",
                path.display()
            );
            fig = fig.merge(Toml::file(path));
        }
        // AUDITLOG_CONFIG is the --config flag; AUDITLOG_BIN is the test kit's path to this binary.
        let fig = fig.merge(
            Env::prefixed("AUDITLOG_")
                .ignore(&["CONFIG", "BIN"])
                .split("__"),
        );
        let cfg: Config = fig
            .extract()
            .map_err(|e| anyhow::anyhow!(describe(e)))
            .context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every section; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.clickhouse.validate()?;
        self.kafka.validate()?;
        self.producer.validate()?;
        self.consumer.validate()?;
        self.api.validate()?;
        self.streams.validate()?;
        self.sequencer.validate()?;
        self.relay.validate()?;
        self.log.validate()?;
        Ok(())
    }
}

/// Old setting names of every section, refused with a hint naming the new one.
const RENAMED: &[&[Renamed]] = &[ApiConfig::RENAMED];

/// One [`BadSetting`] per figment error (joined by `; `), each naming the field path and where
/// the value came from; an old setting name gets the hint naming its replacement.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let mut path = e.path.clone();
            if let figment::error::Kind::UnknownField(name, _) = &e.kind {
                // Name the unknown key itself (`kafka.brokerz`), wherever it was found.
                if path.last() != Some(name) {
                    path.push(name.clone());
                }
            }
            let field = if path.is_empty() {
                String::from("(top level)")
            } else {
                path.join(".")
            };
            let from = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            let hint = match (&e.kind, e.path.first()) {
                (figment::error::Kind::UnknownField(name, _), Some(section)) => RENAMED
                    .iter()
                    .find_map(|table| Renamed::hint(table, section, name))
                    .map(|new| format!(" ({name} was {new})"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            BadSetting::new(field, format!("{}{hint}{from}", e.kind)).to_string()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
// figment::Jail's closures must return figment::Error, which is large by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn unknown_field_in_file_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[kafka]\nbrokerz = \"x\"\n")?;
            let err = Config::load(Some(Path::new("c.toml"))).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains("kafka") && msg.contains("brokerz"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn kafka_errors_name_the_key_and_dlq_topic_stays_in_the_kafka_section() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[kafka]\nbrokerz = \"x\"\n")?;
            let msg = format!("{:#}", Config::load(Some(Path::new("c.toml"))).unwrap_err());
            assert!(msg.contains("kafka.brokerz: unknown field"), "{msg}");
            jail.set_env("AUDITLOG_KAFKA__SECURITY_PROTOCOL", "tls");
            let msg = format!("{:#}", Config::load(None).unwrap_err());
            assert!(
                msg.contains("kafka.security_protocol: unknown variant"),
                "{msg}"
            );
            jail.clear_env();
            jail.create_file(
                "d.toml",
                "[kafka]\ndlq_topic = \"dead\"\ntopic = \"live\"\n",
            )?;
            jail.set_env("AUDITLOG_KAFKA__BROKERS", "10.0.0.1:9092");
            let cfg = Config::load(Some(Path::new("d.toml"))).unwrap();
            assert_eq!(
                (cfg.kafka.dlq_topic.as_str(), cfg.kafka.topic.as_str()),
                ("dead", "live")
            );
            assert_eq!(cfg.kafka.brokers, "10.0.0.1:9092");
            jail.set_env("AUDITLOG_KAFKA__DLQ_TOPIC", "a b");
            let msg = format!("{:#}", Config::load(Some(Path::new("d.toml"))).unwrap_err());
            assert!(msg.starts_with("kafka.dlq_topic: "), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn cluster_settings_load_from_the_environment_and_are_checked() {
        Jail::expect_with(|jail| {
            jail.set_env("AUDITLOG_CLICKHOUSE__CLUSTER", "auditlog");
            jail.set_env(
                "AUDITLOG_CLICKHOUSE__FAILOVER_URLS",
                r#"["http://ch2:8123", "http://ch3:8123"]"#,
            );
            jail.set_env("AUDITLOG_CLICKHOUSE__INSERT_QUORUM", "2");
            let cfg = Config::load(None).unwrap();
            assert_eq!(cfg.clickhouse.cluster, "auditlog");
            assert_eq!(
                cfg.clickhouse.failover_urls,
                vec!["http://ch2:8123", "http://ch3:8123"]
            );
            assert_eq!(cfg.clickhouse.insert_quorum, 2);
            jail.set_env("AUDITLOG_CLICKHOUSE__FAILOVER_URLS", r#"["ch2:8123"]"#);
            let msg = format!("{:#}", Config::load(None).unwrap_err());
            assert!(msg.contains("clickhouse.failover_urls"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn a_duration_without_a_unit_is_refused_with_a_hint() {
        Jail::expect_with(|jail| {
            jail.set_env("AUDITLOG_CONSUMER__BATCH_MAX_WAIT", "1000");
            let msg = format!("{:#}", Config::load(None).unwrap_err());
            assert!(
                msg.contains("consumer.batch_max_wait: 1000 is a number without a unit"),
                "{msg}"
            );
            Ok(())
        });
    }

    #[test]
    fn env_overrides_file_and_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[kafka]\ntopic = \"from-file\"\n")?;
            jail.set_env("AUDITLOG_KAFKA__BROKERS", "10.0.0.1:9092");
            let cfg = Config::load(Some(Path::new("c.toml"))).unwrap();
            assert_eq!(cfg.kafka.brokers, "10.0.0.1:9092");
            assert_eq!(cfg.kafka.topic, "from-file");
            assert_eq!(cfg.clickhouse, ClickHouseConfig::default());
            Ok(())
        });
    }

    #[test]
    fn invalid_value_is_named() {
        Jail::expect_with(|jail| {
            jail.set_env("AUDITLOG_CLICKHOUSE__URL", "localhost:8123");
            let msg = format!("{:#}", Config::load(None).unwrap_err());
            assert!(msg.contains("clickhouse.url"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn api_durations_are_humantime_and_old_names_point_to_the_new_ones() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[api]\ntoken_cache = \"500ms\"\nquery_timeout = \"5s\"\nidle_timeout = \"2m\"\n",
            )?;
            let cfg = Config::load(Some(Path::new("c.toml"))).unwrap();
            assert_eq!(cfg.api.token_cache, std::time::Duration::from_millis(500));
            assert_eq!(cfg.api.query_timeout, std::time::Duration::from_secs(5));
            assert_eq!(cfg.api.idle_timeout, std::time::Duration::from_secs(120));
            jail.create_file("old.toml", "[api]\ntoken_cache_ms = 2000\n")?;
            let msg = format!(
                "{:#}",
                Config::load(Some(Path::new("old.toml"))).unwrap_err()
            );
            assert!(
                msg.contains("token_cache_ms") && msg.contains("api.token_cache"),
                "{msg}"
            );
            jail.set_env("AUDITLOG_API__QUERY_TIMEOUT_MS", "30000");
            let msg = format!("{:#}", Config::load(None).unwrap_err());
            assert!(msg.contains("api.query_timeout,"), "{msg}");
            jail.clear_env();
            jail.set_env("AUDITLOG_API__HEADER_READ_TIMEOUT", "0s");
            let msg = format!("{:#}", Config::load(None).unwrap_err());
            assert!(msg.contains("api.header_read_timeout"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn a_log_level_that_is_not_one_stops_startup() {
        for bad in ["inf", "verbose", "info,librdkafka=loud", ""] {
            let log = LogConfig {
                level: bad.into(),
                ..LogConfig::default()
            };
            let msg = format!("{:#}", log.validate().unwrap_err());
            assert!(msg.starts_with("log.level: "), "{bad:?}: {msg}");
        }
        for good in [
            "info",
            "WARN",
            "info,librdkafka=warn",
            "auditlog_sink=debug",
            "off",
        ] {
            let log = LogConfig {
                level: good.into(),
                ..LogConfig::default()
            };
            log.validate().unwrap_or_else(|e| panic!("{good:?}: {e:#}"));
        }
        Jail::expect_with(|jail| {
            jail.set_env("AUDITLOG_LOG__LEVEL", "inf");
            let msg = format!("{:#}", Config::load(None).unwrap_err());
            assert!(
                msg.contains("log.level") && msg.contains("\"inf\""),
                "{msg}"
            );
            Ok(())
        });
    }

    #[test]
    fn clickhouse_compression_is_read_and_a_bad_one_named() {
        Jail::expect_with(|jail| {
            jail.set_env("AUDITLOG_CLICKHOUSE__COMPRESSION", "none");
            let cfg = Config::load(None).unwrap();
            assert_eq!(
                cfg.clickhouse.compression,
                auditlog_store::Compression::None
            );
            jail.set_env("AUDITLOG_CLICKHOUSE__COMPRESSION", "gzip");
            let msg = format!("{:#}", Config::load(None).unwrap_err());
            assert!(msg.contains("compression") && msg.contains("gzip"), "{msg}");
            Ok(())
        });
    }
}
