//! Sequencer settings (`[sequencer]` in the config file). Every field has a default but the
//! signing key; the checks name the field.

use std::time::Duration;

use auditlog_settings::{check, BadSetting};
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
    /// How often the events table is read for new rows (at once again while a read found a
    /// full page). `10ms` to `1m`. Default `200ms`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub poll_interval: Duration,
    /// Most rows one step reads (split between the Kafka partitions with new rows); one step
    /// is one insert into each log table. `100` to `1000000`. Default `10000`.
    pub page_rows: u32,
    /// Deadline of one request to a witness. `100ms` to `1m`. Default `5s`.
    #[serde(with = "auditlog_settings::duration")]
    #[schemars(with = "auditlog_settings::DurationSchema")]
    pub witness_timeout: Duration,
    /// Witnesses every new checkpoint is sent to (C2SP tlog-witness), as `[[sequencer.witnesses]]`
    /// tables with `url` and `verifier_key`. Default `[]` (none).
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
            page_rows: 10_000,
            witness_timeout: Duration::from_secs(5),
            witnesses: Vec::new(),
        }
    }
}

impl SequencerConfig {
    /// Checks the settings (not the key file: [`crate::key::load`] reads it at startup); the
    /// error names the field.
    pub fn validate(&self) -> Result<(), BadSetting> {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        if !self.listen.is_empty() {
            check::socket_addr(
                "sequencer.listen",
                &self.listen,
                "127.0.0.1:8083 (or empty)",
            )?;
        }
        check::ensure(
            !self.origin_prefix.is_empty()
                && self
                    .origin_prefix
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '+'),
            "sequencer.origin_prefix",
            "printable ASCII without spaces or '+', not empty (a note key name prefix)",
        )?;
        check::between(
            "sequencer.checkpoint_interval",
            self.checkpoint_interval,
            ms(100),
            s(3600),
        )?;
        check::between("sequencer.poll_interval", self.poll_interval, ms(10), s(60))?;
        check::in_range("sequencer.page_rows", self.page_rows, 100..=1_000_000)?;
        check::between(
            "sequencer.witness_timeout",
            self.witness_timeout,
            ms(100),
            s(60),
        )?;
        for (i, w) in self.witnesses.iter().enumerate() {
            check::ensure(
                w.url.starts_with("http://") || w.url.starts_with("https://"),
                &format!("sequencer.witnesses[{i}].url"),
                format!("{:?} is not an http:// or https:// URL", w.url),
            )?;
            check::ensure(
                auditlog_tlog::Verifier::parse(&w.verifier_key).is_ok(),
                &format!("sequencer.witnesses[{i}].verifier_key"),
                "not a verifier key <name>+<id>+<base64 key> (`auditlog keygen` prints it)",
            )?;
        }
        Ok(())
    }

    /// The origin of `workspace_id`'s log.
    pub fn origin(&self, workspace_id: &str) -> String {
        format!("{}/{workspace_id}", self.origin_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_each_check_names_its_field() {
        SequencerConfig::default().validate().unwrap();
        let bad = [
            (
                SequencerConfig {
                    page_rows: 10,
                    ..Default::default()
                },
                "sequencer.page_rows",
            ),
            (
                SequencerConfig {
                    poll_interval: Duration::ZERO,
                    ..Default::default()
                },
                "sequencer.poll_interval",
            ),
            (
                SequencerConfig {
                    checkpoint_interval: Duration::from_millis(10),
                    ..Default::default()
                },
                "sequencer.checkpoint_interval",
            ),
            (
                SequencerConfig {
                    witness_timeout: Duration::ZERO,
                    ..Default::default()
                },
                "sequencer.witness_timeout",
            ),
            (
                SequencerConfig {
                    listen: "nowhere".into(),
                    ..Default::default()
                },
                "sequencer.listen",
            ),
            (
                SequencerConfig {
                    origin_prefix: "a b".into(),
                    ..Default::default()
                },
                "sequencer.origin_prefix",
            ),
            (
                SequencerConfig {
                    witnesses: vec![WitnessTarget {
                        url: "ftp://x".into(),
                        verifier_key: String::new(),
                    }],
                    ..Default::default()
                },
                "sequencer.witnesses[0].url",
            ),
        ];
        for (cfg, field) in bad {
            assert_eq!(cfg.validate().unwrap_err().field, field);
        }
    }
}
