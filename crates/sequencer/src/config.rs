//! Sequencer settings (`[sequencer]` in the config file). Every field has a default but the
//! signing key; the checks name the field.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `auditlog sequencer` settings (`[sequencer]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SequencerConfig {
    /// Address of the sequencer's `/metrics` and `/health` endpoints; empty disables them.
    /// Default `127.0.0.1:8083`.
    pub listen: String,
    /// File holding the log's private key (`PRIVATE+KEY+...`, from `auditlog keygen`); read at
    /// startup, a missing or unreadable file stops it. Required by `auditlog sequencer`.
    pub signing_key_file: String,
    /// Checkpoint origins are `<origin_prefix>/<workspace_id>`. Default `auditlog.local`.
    pub origin_prefix: String,
    /// How often a checkpoint is signed for each log that grew. `100ms` to `1h`. Default `2s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub checkpoint_interval: Duration,
    /// How often the events table is read for new rows. `10ms` to `1m`. Default `200ms`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub poll_interval: Duration,
    /// Witnesses every new checkpoint is sent to (C2SP tlog-witness). Default none.
    pub witnesses: Vec<WitnessTarget>,
}

/// One witness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WitnessTarget {
    /// Base URL of the witness (`http://127.0.0.1:8084`).
    pub url: String,
    /// The witness's verifier key (`<name>+<id>+<key>`), to check its cosignatures.
    pub verifier_key: String,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8083".into(),
            signing_key_file: String::new(),
            origin_prefix: "auditlog.local".into(),
            checkpoint_interval: Duration::from_secs(2),
            poll_interval: Duration::from_millis(200),
            witnesses: Vec::new(),
        }
    }
}
