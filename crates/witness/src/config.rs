//! Witness settings (`[witness]` in the config file).

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
    /// is rebuilt from at startup. Required.
    pub state_dir: String,
    /// The logs it witnesses. A checkpoint whose origin matches no entry is refused (403).
    pub logs: Vec<TrustedLog>,
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
        }
    }
}
