//! The sequencer's inserts into the log's tables (owned by the sequencer's author): each call
//! is ONE insert of all its rows (a step of the sequencer writes each table once, never once
//! per event: ClickHouse would answer TOO_MANY_PARTS). The commit protocol (docs/integrity.md):
//! per step `log_leaves`, `log_leaves_by_event` (the same rows, by event), `log_tiles`,
//! `log_heads` (the commit point), `log_positions`.

use std::time::Duration;

use clickhouse::{Client, RowOwned, RowWrite};

use super::rows::{CheckpointRow, CosignatureRow, HeadRow, KeyRow, LeafRow, PositionRow, TileRow};
use crate::{Error, Result};

/// One insert of `rows` into `table`; none when `rows` is empty. With a `token`, ClickHouse
/// drops a repeated insert with the same token (replicated tables; plain ones ignore it), so
/// a token must only ever name the same rows.
async fn insert_rows<T>(client: &Client, table: &str, rows: &[T], token: Option<&str>) -> Result<()>
where
    T: RowOwned + RowWrite,
{
    if rows.is_empty() {
        return Ok(());
    }
    let what = || format!("insert {} rows into {table}", rows.len());
    let mut insert = client
        .insert::<T>(table)
        .await
        .map_err(|e| Error::clickhouse(what(), e))?
        .with_timeouts(Some(Duration::from_secs(30)), Some(Duration::from_secs(60)));
    if let Some(token) = token {
        insert = insert
            .with_setting("insert_deduplicate", "1")
            .with_setting("insert_deduplication_token", token);
    }
    for row in rows {
        insert
            .write(row)
            .await
            .map_err(|e| Error::clickhouse(what(), e))?;
    }
    insert.end().await.map_err(|e| Error::clickhouse(what(), e))
}

/// The leaves of one step (every workspace), `token` derived from the step's rows.
pub async fn leaves(client: &Client, rows: &[LeafRow], token: &str) -> Result<()> {
    insert_rows(client, "log_leaves", rows, Some(token)).await
}

/// The same leaves into `log_leaves_by_event` (the inclusion proof's lookup by event,
/// migration 0013), right after [`leaves`], `token` derived from the step's rows.
pub async fn leaves_by_event(client: &Client, rows: &[LeafRow], token: &str) -> Result<()> {
    insert_rows(client, "log_leaves_by_event", rows, Some(token)).await
}

/// Fills `log_leaves_by_event` from `log_leaves` when it is empty and `log_leaves` is not (a
/// log sequenced before migration 0013): one `INSERT ... SELECT` on the server; returns
/// whether it ran. Until it has, and for what an interrupted one left out, the API falls back
/// to scanning `log_leaves` (`read::leaves_of_event`).
pub async fn backfill_leaves_by_event(client: &Client) -> Result<bool> {
    let (lookup, leaves): (u64, u64) = client
        .query(
            "SELECT toUInt64(ifNull((SELECT count() FROM log_leaves_by_event), 0)), \
             toUInt64(ifNull((SELECT count() FROM log_leaves), 0))",
        )
        .fetch_one()
        .await
        .map_err(|e| Error::clickhouse("count log_leaves_by_event", e))?;
    if lookup > 0 || leaves == 0 {
        return Ok(false);
    }
    client
        .query(
            "INSERT INTO log_leaves_by_event (workspace_id, event_id, leaf_index, time, \
             content_sha256, leaf_hash, kafka_partition, kafka_offset, sequenced_at) \
             SELECT workspace_id, event_id, leaf_index, time, content_sha256, leaf_hash, \
             kafka_partition, kafka_offset, sequenced_at FROM log_leaves",
        )
        .with_setting("max_execution_time", "0")
        .execute()
        .await
        .map_err(|e| Error::clickhouse("fill log_leaves_by_event from log_leaves", e))?;
    Ok(true)
}

/// The tiles that changed in one step, `token` derived from the step's rows.
pub async fn tiles(client: &Client, rows: &[TileRow], token: &str) -> Result<()> {
    insert_rows(client, "log_tiles", rows, Some(token)).await
}

/// The new heads of one step: the commit point.
pub async fn heads(client: &Client, rows: &[HeadRow]) -> Result<()> {
    insert_rows(client, "log_heads", rows, None).await
}

/// The read positions after one step.
pub async fn positions(client: &Client, rows: &[PositionRow]) -> Result<()> {
    insert_rows(client, "log_positions", rows, None).await
}

/// The checkpoints of one signing round.
pub async fn checkpoints(client: &Client, rows: &[CheckpointRow]) -> Result<()> {
    insert_rows(client, "log_checkpoints", rows, None).await
}

/// The cosignatures of one witness round.
pub async fn cosignatures(client: &Client, rows: &[CosignatureRow]) -> Result<()> {
    insert_rows(client, "log_cosignatures", rows, None).await
}

/// Announces a signing key (inserted or refreshed: `last_used` is the row's version).
pub async fn key(client: &Client, row: &KeyRow) -> Result<()> {
    insert_rows(client, "log_keys", std::slice::from_ref(row), None).await
}
