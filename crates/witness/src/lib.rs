//! `auditlog witness` and its client (docs/witness.md).

pub mod client;
pub mod config;

pub use client::{AddResult, WitnessClient, WitnessError};
pub use config::{TrustedLog, WitnessConfig};
