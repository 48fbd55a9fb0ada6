//! The row written: one row of `events` in RowBinary, flattened from an event, and the INSERT
//! that writes rows. Column docs: ARCHITECTURE.md ("Schema").

use std::time::Duration;

use auditlog_event::AuditEvent;
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TABLE;

/// A row of `events` (every column but `inserted_at`, which ClickHouse fills with `now64(3)`).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EventRow {
    /// UUIDv7 idempotency key.
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    /// The tenant.
    pub workspace_id: String,
    /// Logical bucket.
    pub bucket: String,
    /// Event type, `resource.action`.
    pub event: String,
    /// Event time, epoch milliseconds (`DateTime64(3)`).
    pub time: i64,
    /// `user`, `root_key` or `system`.
    pub actor_type: String,
    /// Actor id.
    pub actor_id: String,
    /// Actor display name.
    pub actor_name: String,
    /// Actor metadata as JSON text, `""` when none.
    pub actor_meta: String,
    /// Resource type of each target.
    pub target_types: Vec<String>,
    /// Resource id of each target.
    pub target_ids: Vec<String>,
    /// Display name of each target.
    pub target_names: Vec<String>,
    /// The targets as a JSON array (with metadata).
    pub targets: String,
    /// Human-readable summary.
    pub description: String,
    /// Client IP, `""` when unknown.
    pub remote_ip: String,
    /// Client user agent, `""` when unknown.
    pub user_agent: String,
    /// Client location, `""` when unknown.
    pub location: String,
    /// Request payload, JSON text.
    pub request: String,
    /// Response payload, JSON text.
    pub response: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Failure reason, `""` on success.
    pub failure_reason: String,
    /// Groups the events of one operation, `""` when none.
    pub correlation_id: String,
    /// Wire schema version.
    pub version: u16,
    /// Days kept after `time`; 0 = unlimited.
    pub retention_days: u32,
    /// Provenance: Kafka partition.
    pub kafka_partition: i32,
    /// Provenance: Kafka offset.
    pub kafka_offset: i64,
}

/// Where a row came from and how long it is kept: what the event itself does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowContext {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// The workspace's retention, days (0 = unlimited).
    pub retention_days: u32,
}

impl EventRow {
    /// Flattens an event into a row.
    pub fn from_event(e: AuditEvent, ctx: RowContext) -> Self {
        let targets = serde_json::to_string(&e.targets).unwrap_or_default();
        let actor_meta = e
            .actor
            .meta
            .as_ref()
            .map(|m| serde_json::to_string(m).unwrap_or_default())
            .unwrap_or_default();
        // The JSON text above keeps the targets whole; the columns take their strings over.
        let n = e.targets.len();
        let (mut target_types, mut target_ids, mut target_names) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for t in e.targets {
            target_types.push(t.kind);
            target_ids.push(t.id);
            target_names.push(t.name);
        }
        Self {
            event_id: e.event_id,
            workspace_id: e.workspace_id,
            bucket: e.bucket,
            event: e.event.as_str().to_owned(),
            time: e.time.timestamp_millis(),
            actor_type: e.actor.kind.as_str().to_owned(),
            actor_id: e.actor.id,
            actor_name: e.actor.name,
            actor_meta,
            target_types,
            target_ids,
            target_names,
            targets,
            description: e.description,
            remote_ip: e.context.remote_ip,
            user_agent: e.context.user_agent,
            location: e.context.location.unwrap_or_default(),
            request: e.request.into_json(),
            response: e.response.into_json(),
            outcome: e.outcome.status.as_str().to_owned(),
            failure_reason: e.outcome.reason.unwrap_or_default(),
            correlation_id: e.correlation_id.unwrap_or_default(),
            version: e.version,
            retention_days: ctx.retention_days,
            kafka_partition: ctx.partition,
            kafka_offset: ctx.offset,
        }
    }
}

/// Inserts `rows` in one INSERT carrying `token` as its deduplication token: ClickHouse drops
/// an insert whose token it already saw (within `non_replicated_deduplication_window`), so the
/// same token must mean the same rows. This is how the consumer writes a batch; a test seeding
/// rows passes a token of its own for each call.
pub async fn insert(
    client: &Client,
    rows: &[EventRow],
    token: &str,
) -> clickhouse::error::Result<()> {
    let mut insert = client
        .insert::<EventRow>(TABLE)
        .await?
        .with_timeouts(Some(Duration::from_secs(30)), Some(Duration::from_secs(60)))
        .with_setting("insert_deduplicate", "1")
        .with_setting("insert_deduplication_token", token)
        // Events are unique by id within a batch (a producer retry lands in a later
        // batch, if at all): skip the ReplacingMergeTree merge ClickHouse would otherwise
        // run over every inserted block (a third of its insert time). Duplicates still
        // collapse in background merges and under FINAL.
        .with_setting("optimize_on_insert", "0");
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}
