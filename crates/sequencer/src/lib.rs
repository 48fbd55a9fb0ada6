//! `auditlog sequencer`: builds every workspace's tamper-evident log (docs/integrity.md).
//!
//! - [`config`]: `[sequencer]` settings; [`key`]: the signing key file.
//! - [`source`]: reading `events` per Kafka partition in offset order after the positions.
//! - [`logs`]: the heads and appenders of the workspace logs in memory.
//! - [`step`]: one step: dedup, append, the four inserts (leaves, tiles, heads, positions).
//! - [`checkpoints`]: signing rounds and the key's announcement in `log_keys`.
//! - [`witness`]: one task per witness sending it the new checkpoints.
//! - [`health`], [`metrics`]: `/metrics`, `/health/live`, `/health/ready`.
//! - [`run`]: the loop.

pub mod checkpoints;
pub mod config;
pub mod error;
pub mod health;
pub mod key;
pub mod logs;
pub mod metrics;
pub mod run;
pub mod source;
pub mod step;
pub mod witness;

pub use config::{SequencerConfig, WitnessTarget};
pub use error::{Error, Result};
pub use run::run;
