//! The tamper-evident log's tables (migrations `0011_log.sql` and `0013_log_leaves_by_event.sql`,
//! docs/integrity.md), from Rust: the one place that knows their columns.
//!
//! - [`rows`]: the row types of `log_leaves` (and `log_leaves_by_event`), `log_tiles`,
//!   `log_heads`, `log_positions`, `log_checkpoints`, `log_cosignatures`, `log_keys`,
//!   `plan_changes`.
//! - [`leaf_of`]: an event row's leaf (what the sequencer appends and the verifier recomputes).
//! - [`write`]: the sequencer's inserts (one per step, never one per event).
//! - [`read`]: the reads of the API, the export and the sequencer's restart.

pub mod read;
pub mod rows;
pub mod write;

use auditlog_tlog::leaf::{content_sha256, LeafData};

use crate::events::StoredEvent;

/// The leaf of a stored event: its id, time and the SHA-256 of the RFC 8785 canonical form of
/// [`StoredEvent::export_json`] (an event JCS cannot write is hashed as that text, byte for
/// byte: [`content_sha256`]).
pub fn leaf_of(row: &StoredEvent) -> serde_json::Result<LeafData> {
    let json = row.export_json()?;
    Ok(LeafData {
        event_id: row.id.clone(),
        time_ms: row.time_ms,
        content_sha256: content_sha256(&json),
    })
}
