//! `auditlog sequencer`: builds every workspace's tamper-evident log (docs/integrity.md).

pub mod config;

pub use config::{SequencerConfig, WitnessTarget};
