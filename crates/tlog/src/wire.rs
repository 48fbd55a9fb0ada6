//! The JSON bodies of the log API (`/v1/log/...`), of the verifiable export
//! (`GET /v1/export?format=log`) and what the verifier reads: one definition for the server,
//! the OpenAPI description and every client. Hashes are standard base64 (as in checkpoints),
//! `content_sha256` is lowercase hex (as in the leaf data), times are epoch milliseconds.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// `GET /v1/log/checkpoint`: the workspace log's latest signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointBody {
    /// The log's origin, `<origin_prefix>/<workspace_id>`.
    pub origin: String,
    /// Leaves covered.
    pub tree_size: u64,
    /// Root hash, base64.
    pub root_hash: String,
    /// When it was signed, epoch ms.
    pub signed_at_ms: i64,
    /// The signed note: the checkpoint body, a blank line, the log's signature line, then
    /// every witness cosignature line received for this tree size.
    pub note: String,
    /// The witnesses that cosigned it (names, as in their signature lines).
    pub witnesses: Vec<String>,
}

/// A leaf and what it commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeafBody {
    /// Position in the workspace's log, from 0.
    pub leaf_index: u64,
    /// The event's id.
    pub event_id: String,
    /// The event's time, epoch ms.
    pub time_ms: i64,
    /// SHA-256 of the event's RFC 8785 canonical JSON, hex.
    pub content_sha256: String,
    /// The leaf hash, base64.
    pub leaf_hash: String,
}

/// `GET /v1/log/proof/inclusion`: an event's leaf and its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InclusionBody {
    /// The leaf.
    pub leaf: LeafBody,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The proof's hashes (RFC 9162 PATH), base64, leaf side first.
    pub hashes: Vec<String>,
}

/// `GET /v1/log/proof/consistency`: a consistency proof between two tree sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyBody {
    /// The older size.
    pub first: u64,
    /// The newer size.
    pub second: u64,
    /// The proof's hashes (RFC 9162 PROOF), base64.
    pub hashes: Vec<String>,
}

/// `GET /v1/log/leaves`: leaves in index order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeavesPage {
    /// Consecutive leaves from `start`.
    pub data: Vec<LeafBody>,
    /// Where the next page starts; `null` at the latest checkpoint's size.
    pub next_start: Option<u64>,
}

/// A period of a workspace's retention: from `from_ms` (the plan change) until the next
/// period's `from_ms`. The first period of every history starts at `i64::MIN` (a workspace
/// without a plan is Free, 7 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionPeriod {
    /// When it took effect, epoch ms.
    pub from_ms: i64,
    /// Days kept after the event's time; 0 = unlimited.
    pub retention_days: u32,
}

/// `GET /v1/log/retention`: the workspace's retention over time, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionHistory {
    /// The workspace.
    pub workspace_id: String,
    /// Oldest first.
    pub periods: Vec<RetentionPeriod>,
}

/// `GET /v1/log/keys`: the public keys of the log's checkpoints (current and retired),
/// as verifier key texts (`<name>+<id>+<key>`), newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeysBody {
    /// Verifier keys, newest first.
    pub keys: Vec<String>,
}

/// The first line of `GET /v1/export?format=log`: `{"type":"header", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExportHeader {
    /// Always `header`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The workspace.
    pub workspace_id: String,
    /// When the export started, epoch ms (the "now" retention is judged at).
    pub exported_at_ms: i64,
    /// The checkpoint the export covers (leaves `0..tree_size`).
    pub checkpoint: CheckpointBody,
    /// The workspace's retention history.
    pub retention: Vec<RetentionPeriod>,
}

/// One leaf line of the export, in leaf order: `{"type":"leaf","leaf":{...},"event":{...}}`.
/// `event` is the event exactly as the NDJSON export writes it, or `null` when no row is
/// stored for the leaf (deleted by retention, or by someone: the verifier decides which).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportLeaf {
    /// Always `leaf`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The leaf.
    pub leaf: LeafBody,
    /// The stored event, or `null`.
    #[schema(value_type = Option<Object>)]
    pub event: Option<Box<RawValue>>,
}

/// A stored event that no leaf covers, after the leaf lines: `{"type":"unlogged", ...}`
/// (not yet sequenced, or inserted behind the log's back).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportUnlogged {
    /// Always `unlogged`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the row says it was stored, epoch ms.
    pub inserted_at_ms: i64,
    /// The stored event.
    #[schema(value_type = Object)]
    pub event: Box<RawValue>,
}

/// The witness's `GET /checkpoint?origin=...` is plain text: the newest checkpoint it
/// cosigned for that origin, as a signed note carrying the log's signature and its own
/// cosignature (404 when it has none). The add-checkpoint protocol is C2SP tlog-witness.
pub const WITNESS_CHECKPOINT_PATH: &str = "/checkpoint";

/// C2SP tlog-witness: `POST /add-checkpoint`.
pub const WITNESS_ADD_PATH: &str = "/add-checkpoint";
