//! Witness settings (`[witness]` in the config file).

use std::time::Duration;

use auditlog_settings::{check, BadSetting};
use auditlog_tlog::{KeyKind, Verifier};
use serde::{Deserialize, Serialize};

/// `auditlog witness` settings (`[witness]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WitnessConfig {
    /// Listen address of the witness's HTTP API. Default `127.0.0.1:8084`.
    pub listen: String,
    /// File holding the witness's private cosigning key (`PRIVATE+KEY+...`, from
    /// `auditlog keygen --witness`). Required.
    pub key_file: String,
    /// Directory of the append-only checkpoint file (`checkpoints.ndjson`) the witness's state
    /// is rebuilt from at startup. Created when missing. Required.
    pub state_dir: String,
    /// The logs it witnesses. A checkpoint whose origin matches no entry is refused (404), one
    /// without a valid signature of a matching entry's key too (403).
    pub logs: Vec<TrustedLog>,
    /// Largest `add-checkpoint` request body, in bytes; a bigger one is refused with 413
    /// before it is read. `1024` to `1048576`. Default `65536` (a checkpoint, 63 proof hashes
    /// and a few signatures take about 4 KiB).
    pub max_body_bytes: usize,
    /// How long a connection may take to send a request head once it has sent its first byte.
    /// `100ms` to `5m`. Default `10s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub header_read_timeout: Duration,
    /// How long a connection may stay idle (before its first byte, between keep-alive
    /// requests, a stalled request body or a client that stopped reading). `100ms` to `1h`.
    /// Default `30s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub idle_timeout: Duration,
    /// Most connections open at once; at the cap new ones wait in the listen backlog.
    /// `1` to `65536`. Default `256`.
    pub max_connections: usize,
    /// After SIGTERM/SIGINT, how long requests in flight may take to finish. Default `10s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub shutdown_timeout: Duration,
}

/// A family of logs the witness accepts checkpoints of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedLog {
    /// Origins starting with this prefix (`auditlog.local/`; the whole origin for one log).
    pub origin_prefix: String,
    /// The log's verifier key: checkpoints must carry its valid signature.
    pub verifier_key: String,
}

impl Default for WitnessConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8084".into(),
            key_file: String::new(),
            state_dir: String::new(),
            logs: Vec::new(),
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 256,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl WitnessConfig {
    /// Checks every field but the key file's content (read by
    /// [`crate::Witness::open`]); the error names the field.
    pub fn validate(&self) -> Result<(), BadSetting> {
        check::socket_addr("witness.listen", &self.listen, "127.0.0.1:8084")?;
        check::not_blank("witness.key_file", &self.key_file)?;
        check::not_blank("witness.state_dir", &self.state_dir)?;
        check::in_range(
            "witness.max_body_bytes",
            self.max_body_bytes,
            1024..=1 << 20,
        )?;
        check::between(
            "witness.header_read_timeout",
            self.header_read_timeout,
            Duration::from_millis(100),
            Duration::from_secs(300),
        )?;
        check::between(
            "witness.idle_timeout",
            self.idle_timeout,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        )?;
        check::in_range("witness.max_connections", self.max_connections, 1..=65536)?;
        self.log_verifiers().map(|_| ())
    }

    /// Each `logs` entry's prefix with its parsed key; a key that is not a log's note key
    /// names `witness.logs[N].verifier_key`.
    pub fn log_verifiers(&self) -> Result<Vec<(String, Verifier)>, BadSetting> {
        self.logs
            .iter()
            .enumerate()
            .map(|(i, log)| {
                check::not_blank(
                    &format!("witness.logs[{i}].origin_prefix"),
                    &log.origin_prefix,
                )?;
                let field = format!("witness.logs[{i}].verifier_key");
                let v = Verifier::parse(log.verifier_key.trim())
                    .map_err(|e| BadSetting::new(&field, e.to_string()))?;
                check::ensure(
                    v.kind() == KeyKind::Note,
                    &field,
                    "is a witness's cosignature key, not a log's key",
                )?;
                Ok((log.origin_prefix.clone(), v))
            })
            .collect()
    }
}
