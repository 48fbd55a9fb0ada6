//! Kafka connection and producer settings.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use auditlog_settings::check;

/// Where the audit topic lives and how to reach the brokers (`[kafka]` in the config file).
/// Shared by producer, consumer and dead-letter clients, which all start from
/// [`KafkaConfig::client_config`]. (The dead-letter topic is the consumer's setting:
/// `auditlog_sink::KafkaSettings`.) `Debug` redacts the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, comma separated. Default `127.0.0.1:9092`.
    pub brokers: String,
    /// The audit events topic (it must exist: it is not created automatically). Default
    /// `audit-events`.
    pub topic: String,
    /// How clients talk to the brokers: `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`
    /// (librdkafka `security.protocol`; `SASL_SSL` is accepted too). Default `plaintext`.
    pub security_protocol: SecurityProtocol,
    /// PEM file of the CA certificate(s) that signed the brokers' certificates (`ssl` and
    /// `sasl_ssl`). Default none: the system's CA store, found by librdkafka's `probe` of the
    /// usual paths (enough for Confluent Cloud, MSK and Redpanda Cloud; Aiven needs its project
    /// CA here).
    pub ssl_ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (`ssl`), with `ssl_key_file`. Default none.
    pub ssl_cert_file: Option<PathBuf>,
    /// PEM private key of `ssl_cert_file` (unencrypted). Default none.
    pub ssl_key_file: Option<PathBuf>,
    /// SASL mechanism (`sasl_plaintext`, `sasl_ssl`): `PLAIN`, `SCRAM-SHA-256`,
    /// `SCRAM-SHA-512` or `OAUTHBEARER` (OIDC client credentials). Default `PLAIN`.
    pub sasl_mechanism: SaslMechanism,
    /// SASL user name (an API key on Confluent Cloud); the OIDC client id for `OAUTHBEARER`.
    /// Default empty.
    pub sasl_username: String,
    /// SASL password (an API secret on Confluent Cloud); the OIDC client secret for
    /// `OAUTHBEARER`. `AUDITLOG_KAFKA__SASL_PASSWORD` sets it from the environment; or see
    /// `sasl_password_file`. Never logged. Default empty.
    pub sasl_password: String,
    /// File holding the SASL password (surrounding whitespace ignored), e.g. a mounted
    /// secret; set either this or `sasl_password`. Default none.
    pub sasl_password_file: Option<PathBuf>,
    /// `OAUTHBEARER`: the OIDC token endpoint URL (`sasl.oauthbearer.token.endpoint.url`).
    /// Default empty.
    pub sasl_oauthbearer_token_endpoint: String,
    /// `OAUTHBEARER`: scope requested with the token (`sasl.oauthbearer.scope`). Default empty.
    pub sasl_oauthbearer_scope: String,
    /// `OAUTHBEARER`: SASL extensions, `key=value` pairs separated by commas
    /// (`sasl.oauthbearer.extensions`; Confluent Cloud wants
    /// `logicalCluster=lkc-...,identityPoolId=pool-...`). Default empty.
    pub sasl_oauthbearer_extensions: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "audit-events".into(),
            security_protocol: SecurityProtocol::Plaintext,
            ssl_ca_file: None,
            ssl_cert_file: None,
            ssl_key_file: None,
            sasl_mechanism: SaslMechanism::Plain,
            sasl_username: String::new(),
            sasl_password: String::new(),
            sasl_password_file: None,
            sasl_oauthbearer_token_endpoint: String::new(),
            sasl_oauthbearer_scope: String::new(),
            sasl_oauthbearer_extensions: String::new(),
        }
    }
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.sasl_password.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("security_protocol", &self.security_protocol)
            .field("ssl_ca_file", &self.ssl_ca_file)
            .field("ssl_cert_file", &self.ssl_cert_file)
            .field("ssl_key_file", &self.ssl_key_file)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &password)
            .field("sasl_password_file", &self.sasl_password_file)
            .field(
                "sasl_oauthbearer_token_endpoint",
                &self.sasl_oauthbearer_token_endpoint,
            )
            .field("sasl_oauthbearer_scope", &self.sasl_oauthbearer_scope)
            .field(
                "sasl_oauthbearer_extensions",
                &self.sasl_oauthbearer_extensions,
            )
            .finish()
    }
}

/// librdkafka `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no authentication (a local broker).
    #[serde(alias = "PLAINTEXT")]
    Plaintext,
    /// TLS; mutual TLS with `ssl_cert_file` and `ssl_key_file`.
    #[serde(alias = "SSL")]
    Ssl,
    /// SASL authentication without TLS (the password crosses the network in clear with PLAIN).
    #[serde(alias = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL authentication over TLS (managed Kafka services).
    #[serde(alias = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether connections use TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// librdkafka `sasl.mechanism` (GSSAPI/Kerberos is not built in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum SaslMechanism {
    /// User name and password, sent as is (use with `sasl_ssl`).
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// OAuth 2 bearer tokens fetched from an OIDC token endpoint (client credentials).
    #[serde(rename = "OAUTHBEARER")]
    OauthBearer,
}

impl SaslMechanism {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OauthBearer => "OAUTHBEARER",
        }
    }
}

/// Producer tuning (`[producer]` in the config file). The producer is always idempotent with
/// `acks=all`; these settings cannot weaken that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {
    /// Compression codec: `lz4`, `zstd` or `none`. Default `lz4`.
    pub compression: Compression,
    /// How long to wait for more events before sending a batch (`linger.ms`), at most `60s`.
    /// Default `5ms`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub linger: Duration,
    /// Events the producer buffers before the broker has acknowledged them
    /// (`queue.buffering.max.messages`). Default `100000`.
    pub buffer_capacity: usize,
    /// What `emit` (and `auditlog emit`) do when the buffer is full: `wait` for room (at most
    /// `full_wait_timeout`) or fail at once with a `QueueFull` error (`error`). `enqueue` takes
    /// this choice as an argument; `try_enqueue` never waits. Default `wait`.
    pub on_full: OnFull,
    /// Longest wait for room in the buffer when `on_full = "wait"`. Default `30s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub full_wait_timeout: Duration,
    /// How long the client keeps retrying an event (broker down, leader changes) before
    /// reporting it undelivered (`message.timeout.ms`). Default `30s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub delivery_timeout: Duration,
    /// How long `ProducerBuilder::build` waits for the broker to answer a metadata request for the topic
    /// before failing. Default `10s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub startup_timeout: Duration,
    /// Client id the broker sees. Default `auditlog-producer`.
    pub client_id: String,
    /// Extra librdkafka properties (`"batch.size" = "1000000"`, security settings, ...),
    /// applied last. `enable.idempotence`, `acks` and `bootstrap.servers` are refused.
    /// Default empty.
    pub properties: BTreeMap<String, String>,
}

/// Compression codec for produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    None,
    /// LZ4 (fast; the default).
    Lz4,
    /// Zstandard (smaller).
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// What to do when the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Fail with `EmitError::QueueFull`.
    Error,
    /// Wait for room, at most `full_wait_timeout`.
    Wait,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            compression: Compression::Lz4,
            linger: Duration::from_millis(5),
            buffer_capacity: 100_000,
            on_full: OnFull::Wait,
            full_wait_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(30),
            startup_timeout: Duration::from_secs(10),
            client_id: "auditlog-producer".into(),
            properties: BTreeMap::new(),
        }
    }
}

/// A setting is out of range: the one bad-setting error of every config section
/// ([`auditlog_settings::BadSetting`]), naming the field as written in the config file
/// (`producer.linger`, `kafka.brokers`, ...).
pub type ConfigError = auditlog_settings::BadSetting;

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(field, message)
}

/// Properties the producer sets itself and that configuration may not override.
pub const RESERVED_PROPERTIES: &[&str] = &["enable.idempotence", "acks", "bootstrap.servers"];

impl KafkaConfig {
    /// Checks brokers, the topic name and the security settings (files must exist and parse).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::ensure(
            !self.brokers.split(',').any(|b| b.trim().is_empty()),
            "kafka.brokers",
            "must list host:port entries, comma separated",
        )?;
        check::topic_name("kafka.topic", &self.topic)?;
        self.validate_security()
    }
}

impl ProducerConfig {
    /// Checks every field; the error names it (`producer.buffer_capacity`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ms = Duration::from_millis;
        check::at_most("producer.linger", self.linger, Duration::from_secs(60))?;
        check::in_range(
            "producer.buffer_capacity",
            self.buffer_capacity,
            1..=10_000_000,
        )?;
        check::at_least("producer.delivery_timeout", self.delivery_timeout, ms(100))?;
        check::ensure(
            self.delivery_timeout > self.linger,
            "producer.delivery_timeout",
            "must be longer than producer.linger",
        )?;
        check::at_least("producer.startup_timeout", self.startup_timeout, ms(100))?;
        check::not_blank("producer.client_id", &self.client_id)?;
        for key in self.properties.keys() {
            check::ensure(
                !RESERVED_PROPERTIES.contains(&key.as_str()),
                &format!("producer.properties.{key}"),
                "is set by the producer itself and cannot be overridden",
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ProducerConfig::default().validate().unwrap();
        KafkaConfig::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(ProducerConfig, &str)> = vec![
            (
                ProducerConfig {
                    buffer_capacity: 0,
                    ..Default::default()
                },
                "producer.buffer_capacity",
            ),
            (
                ProducerConfig {
                    linger: Duration::from_secs(61),
                    ..Default::default()
                },
                "producer.linger",
            ),
            (
                ProducerConfig {
                    delivery_timeout: Duration::from_millis(1),
                    ..Default::default()
                },
                "producer.delivery_timeout",
            ),
            (
                ProducerConfig {
                    startup_timeout: Duration::ZERO,
                    ..Default::default()
                },
                "producer.startup_timeout",
            ),
            (
                ProducerConfig {
                    client_id: " ".into(),
                    ..Default::default()
                },
                "producer.client_id",
            ),
            (
                ProducerConfig {
                    properties: [("acks".to_owned(), "1".to_owned())].into(),
                    ..Default::default()
                },
                "producer.properties.acks",
            ),
        ];
        for (cfg, field) in cases {
            assert_eq!(cfg.validate().unwrap_err().field, field);
        }
        let bad = KafkaConfig {
            topic: "a b".into(),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "kafka.topic");
    }

    #[test]
    fn reads_humantime_and_enums() {
        let cfg: ProducerConfig = serde_json::from_str(
            r#"{"compression":"zstd","linger":"20ms","on_full":"error","delivery_timeout":"2m"}"#,
        )
        .unwrap();
        assert_eq!(cfg.compression, Compression::Zstd);
        assert_eq!(cfg.linger, Duration::from_millis(20));
        assert_eq!(cfg.on_full, OnFull::Error);
        assert_eq!(cfg.delivery_timeout, Duration::from_secs(120));
    }
}
