//! `auditlog witness` and its client (docs/witness.md).
//!
//! - [`witness`]: the decision (C2SP tlog-witness `add-checkpoint` checks, the record, the
//!   cosignature) and the state.
//! - [`state`]: the append-only file the state is rebuilt from.
//! - [`request`]: the `add-checkpoint` body.
//! - [`server`]: the HTTP API (axum).
//! - [`client`]: the client the sequencer and the verifier use.
//! - [`metrics`]: Prometheus metrics.

pub mod client;
pub mod config;
pub mod metrics;
pub mod request;
pub mod server;
pub mod state;
pub mod witness;

pub use client::{AddResult, WitnessClient, WitnessError};
pub use config::{TrustedLog, WitnessConfig};
pub use witness::{AddOutcome, OpenError, Witness};
