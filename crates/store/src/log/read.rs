//! Reads of the log's tables for the API, the export and the sequencer's restart (owned by
//! the API's author; the sequencer may add its restart reads at the end of this file).
//!
//! Every read of a `ReplacingMergeTree` log table is `FINAL` (a re-sequenced leaf, a wider
//! tile, a later key announcement replaces the older row). A proof reads its tiles in one
//! statement ([`tiles`]), an event's leaf comes from `log_leaves_by_event` by primary key
//! ([`leaf_candidates`], checked by the caller against the tiles); the export reads leaves in
//! index ranges ([`leaves`]) and the rows they cover by id within the range's time span
//! ([`events_of_leaves`]), so neither side is ever held whole.

use auditlog_tlog::wire::RetentionPeriod;
use auditlog_tlog::TileId;
use clickhouse::query::{Query, RowCursor};
use clickhouse::Client;
use uuid::Uuid;

use super::rows::{CheckpointRow, CosignatureRow, KeyRow, LeafRow, PlanChangeRow, TileRow};
use crate::events::{StoredEvent, DETAIL_PROJECTION};
use crate::plans::FREE_DAYS;
use crate::{Error, Result};

/// An API point read (the checkpoint, a leaf by event, a proof's tiles: a granule or a few) on
/// one thread: starting reader threads costs more than they save (BENCHMARKS.md, proof latency).
fn point(q: Query) -> Query {
    q.with_setting("max_threads", "1")
}

/// The newest signed checkpoint of `ws`'s log (largest tree size), if any. Without `FINAL`:
/// the newest version of the largest size is what `FINAL` would keep, and the sort key
/// `(workspace_id, tree_size)` reads it in order instead of merging every checkpoint.
pub async fn latest_checkpoint(client: &Client, ws: &str) -> Result<Option<CheckpointRow>> {
    point(client.query(
        "SELECT ?fields FROM log_checkpoints WHERE workspace_id = ? \
         ORDER BY tree_size DESC, signed_at DESC LIMIT 1",
    ))
    .bind(ws)
    .fetch_optional()
    .await
    .map_err(|e| Error::clickhouse("read latest checkpoint", e))
}

/// The witness cosignatures received for `ws`'s checkpoint of `tree_size`, by witness name
/// (the newest per witness, as `FINAL` would keep, without merging the table).
pub async fn cosignatures(
    client: &Client,
    ws: &str,
    tree_size: u64,
) -> Result<Vec<CosignatureRow>> {
    client
        .query(
            "SELECT ?fields FROM log_cosignatures \
             WHERE workspace_id = ? AND tree_size = ? \
             ORDER BY witness, cosigned_at DESC LIMIT 1 BY witness",
        )
        .bind(ws)
        .bind(tree_size)
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("read cosignatures", e))
}

/// The candidate leaves of `event_id` in `ws`'s log, in index order, from `log_leaves_by_event`
/// (migration 0013: one 256-row granule by primary key), the newest version of each index. A
/// candidate is not proof of anything: a leaf re-sequenced before its commit may have left a
/// row here for an index that now holds another event, so callers keep one only when its
/// `leaf_hash` is the hash the tiles hold at its index (and use [`leaves_of_event`] when none
/// is, which also covers leaves sequenced before migration 0013).
pub async fn leaf_candidates(client: &Client, ws: &str, event_id: &Uuid) -> Result<Vec<LeafRow>> {
    point(client.query(
        "SELECT ?fields FROM log_leaves_by_event \
         WHERE workspace_id = ? AND event_id = {id:UUID} \
         ORDER BY leaf_index, sequenced_at DESC LIMIT 1 BY leaf_index",
    ))
    .bind(ws)
    .param("id", event_id.to_string())
    .fetch_all()
    .await
    .map_err(|e| Error::clickhouse("look up the leaves of an event", e))
}

/// Every leaf of `ws`'s log that holds `event_id`, in index order (normally one; callers keep
/// the first below the checkpoint they prove against), read from `log_leaves` itself: the
/// fallback of [`leaf_candidates`]. One statement: the candidate indexes come from the rows
/// without `FINAL` (the `event_id` bloom filter narrows them to a few granules of the whole
/// log), their final versions by primary key, kept when they still hold the event (a leaf
/// re-sequenced before its commit may have held another one first).
pub async fn leaves_of_event(client: &Client, ws: &str, event_id: &Uuid) -> Result<Vec<LeafRow>> {
    let rows: Vec<LeafRow> = client
        .query(
            "SELECT ?fields FROM log_leaves FINAL \
             WHERE workspace_id = ? AND leaf_index IN ( \
                 SELECT leaf_index FROM log_leaves \
                 WHERE workspace_id = ? AND event_id = {id:UUID}) \
             ORDER BY leaf_index",
        )
        .bind(ws)
        .bind(ws)
        .param("id", event_id.to_string())
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("read leaves of event", e))?;
    Ok(rows
        .into_iter()
        .filter(|r| r.event_id == *event_id)
        .collect())
}

/// The leaves `start..end` of `ws`'s log, in index order (a leaf row that is missing is
/// simply absent: callers check the indexes).
pub async fn leaves(client: &Client, ws: &str, start: u64, end: u64) -> Result<Vec<LeafRow>> {
    client
        .query(
            "SELECT ?fields FROM log_leaves FINAL \
             WHERE workspace_id = ? AND leaf_index >= ? AND leaf_index < ? \
             ORDER BY leaf_index",
        )
        .bind(ws)
        .bind(start)
        .bind(end)
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("read leaves", e))
}

/// The tiles `ids` of `ws`'s log (each its widest stored version), in one statement. A tile
/// that is not stored is absent from the answer.
pub async fn tiles(client: &Client, ws: &str, ids: &[TileId]) -> Result<Vec<TileRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Integers only: written into the text (one tuple list instead of one bind per tile).
    let wanted: Vec<String> = ids
        .iter()
        .map(|t| format!("({}, {})", t.level, t.index))
        .collect();
    let sql = format!(
        "SELECT ?fields FROM log_tiles FINAL \
         WHERE workspace_id = ? AND (tile_level, tile_index) IN ({})",
        wanted.join(", ")
    );
    point(client.query(&sql))
        .bind(ws)
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("read tiles", e))
}

/// Every checkpoint signing key (current and retired), newest first.
pub async fn keys(client: &Client) -> Result<Vec<KeyRow>> {
    client
        .query("SELECT ?fields FROM log_keys FINAL ORDER BY first_used DESC, verifier_key")
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("read log keys", e))
}

/// `ws`'s plan changes, oldest first.
pub async fn plan_changes(client: &Client, ws: &str) -> Result<Vec<PlanChangeRow>> {
    client
        .query("SELECT ?fields FROM plan_changes WHERE workspace_id = ? ORDER BY changed_at")
        .bind(ws)
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("read plan changes", e))
}

/// `ws`'s retention over time, oldest first, from its plan changes: a first period from
/// `i64::MIN` on the Free plan (a workspace without a plan is Free), then one period per
/// change. A change recorded at `i64::MIN` replaces that first period.
pub async fn retention_history(client: &Client, ws: &str) -> Result<Vec<RetentionPeriod>> {
    Ok(retention_periods(&plan_changes(client, ws).await?))
}

/// [`retention_history`] of these changes (oldest first).
pub fn retention_periods(changes: &[PlanChangeRow]) -> Vec<RetentionPeriod> {
    let mut periods = vec![RetentionPeriod {
        from_ms: i64::MIN,
        retention_days: FREE_DAYS,
    }];
    for c in changes {
        let p = RetentionPeriod {
            from_ms: c.changed_at,
            retention_days: c.retention_days,
        };
        match periods.last_mut() {
            Some(last) if last.from_ms == p.from_ms => *last = p,
            _ => periods.push(p),
        }
    }
    periods
}

/// The stored rows (one copy each, with payloads) of `ws` whose ids are among `leaves`,
/// looked up within the leaves' time span (the table's sort key: a range read, not a scan of
/// the workspace). Reads `events` itself, not `events_retained`: whether a row should still
/// be there is the verifier's judgement.
pub async fn events_of_leaves(
    client: &Client,
    ws: &str,
    leaves: &[LeafRow],
) -> Result<Vec<StoredEvent>> {
    let (Some(min), Some(max)) = (
        leaves.iter().map(|l| l.time).min(),
        leaves.iter().map(|l| l.time).max(),
    ) else {
        return Ok(Vec::new());
    };
    // A server-side parameter (sent beside the statement, not in its text, which ClickHouse
    // limits to `max_query_size`).
    let ids: Vec<String> = leaves.iter().map(|l| l.event_id.to_string()).collect();
    let sql = format!(
        "SELECT {DETAIL_PROJECTION} FROM events \
         WHERE workspace_id = ? \
           AND time >= fromUnixTimestamp64Milli(toInt64(?), 'UTC') \
           AND time <= fromUnixTimestamp64Milli(toInt64(?), 'UTC') \
           AND event_id IN {{ids:Array(UUID)}} \
         LIMIT 1 BY event_id"
    );
    client
        .query(&sql)
        .bind(ws)
        .bind(min)
        .bind(max)
        .param("ids", ids)
        .with_setting("max_execution_time", "0")
        .fetch_all()
        .await
        .map_err(|e| Error::clickhouse("read events of leaves", e))
}

/// Every stored row of `ws` (one copy each, with payloads) whose id is not a leaf of its log
/// at all, by time: not yet sequenced, or written behind the log's back. Streamed (the
/// statement has no deadline: the caller times the first row).
pub fn unlogged_events(client: &Client, ws: &str) -> Result<RowCursor<StoredEvent>> {
    let sql = format!(
        "SELECT {DETAIL_PROJECTION} FROM events \
         WHERE workspace_id = ? \
           AND event_id NOT IN (SELECT event_id FROM log_leaves WHERE workspace_id = ?) \
         ORDER BY time, event_id \
         LIMIT 1 BY event_id"
    );
    client
        .query(&sql)
        .bind(ws)
        .bind(ws)
        .with_setting("max_execution_time", "0")
        .fetch()
        .map_err(|e| Error::clickhouse("read unlogged events", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(at: i64, days: u32) -> PlanChangeRow {
        PlanChangeRow {
            workspace_id: "w".into(),
            plan: "pro".into(),
            retention_days: days,
            changed_at: at,
        }
    }

    #[test]
    fn retention_starts_free_and_follows_the_changes() {
        let free = RetentionPeriod {
            from_ms: i64::MIN,
            retention_days: FREE_DAYS,
        };
        assert_eq!(retention_periods(&[]), vec![free]);
        let p = retention_periods(&[change(10, 90), change(20, 0)]);
        assert_eq!(
            p,
            vec![
                free,
                RetentionPeriod {
                    from_ms: 10,
                    retention_days: 90
                },
                RetentionPeriod {
                    from_ms: 20,
                    retention_days: 0
                },
            ]
        );
        // Two changes at one millisecond: the later row wins; one at i64::MIN replaces Free.
        let p = retention_periods(&[change(i64::MIN, 90), change(5, 30), change(5, 40)]);
        assert_eq!(
            p,
            vec![
                RetentionPeriod {
                    from_ms: i64::MIN,
                    retention_days: 90
                },
                RetentionPeriod {
                    from_ms: 5,
                    retention_days: 40
                },
            ]
        );
    }
}

// --- sequencer restart reads ---

// ---------------------------------------------------------------------------------------------
// The sequencer's restart reads (owned by the sequencer's author). Each is one statement; the
// versioned tables are read with FINAL (or argMax on the version) so a row replaced by a
// newer version is never seen.

/// The sequencer's restart reads.
pub mod sequencer {
    use clickhouse::Client;
    use serde::Deserialize;

    use super::super::rows::{HeadRow, PositionRow, TileRow};
    use crate::{Error, Result};

    /// Most ids (or keys) one statement carries: the statement stays far below ClickHouse's
    /// `max_query_size` (256 KiB; 2,000 UUIDs are about 80 KB), so a step's lookups are a few
    /// statements rather than one.
    const CHUNK: usize = 2000;

    /// Every read position (`log_positions` FINAL).
    pub async fn positions(client: &Client) -> Result<Vec<PositionRow>> {
        client
            .query(
                "SELECT shard, kafka_partition, kafka_offset, \
                 toUnixTimestamp64Milli(updated_at) AS updated_at FROM log_positions FINAL",
            )
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse("read log_positions", e))
    }

    /// Every committed head (`log_heads` FINAL): one row per workspace log.
    pub async fn heads(client: &Client) -> Result<Vec<HeadRow>> {
        client
            .query(
                "SELECT workspace_id, tree_size, root_hash, \
                 toUnixTimestamp64Milli(updated_at) AS updated_at FROM log_heads FINAL",
            )
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse("read log_heads", e))
    }

    /// The newest version of each tile `(workspace_id, tile_level, tile_index)` asked for
    /// (absent ones are left out).
    pub async fn tiles(client: &Client, ids: &[(String, u8, u64)]) -> Result<Vec<TileRow>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let rows: Vec<TileRow> = client
                .query(
                    "SELECT workspace_id, tile_level, tile_index, width, hashes, \
                     toUnixTimestamp64Milli(written_at) AS written_at FROM log_tiles FINAL \
                     WHERE (workspace_id, tile_level, tile_index) IN ?",
                )
                .bind(chunk)
                .fetch_all()
                .await
                .map_err(|e| Error::clickhouse("read log_tiles", e))?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// A leaf row's key and event: `(workspace_id, leaf_index, event_id)`.
    #[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
    pub struct LeafKey {
        /// The workspace.
        pub workspace_id: String,
        /// The leaf's index.
        pub leaf_index: u64,
        /// The event, as text.
        pub event_id: String,
    }

    /// The leaves whose event is one of `event_ids` (events of time `time_ms.0..=time_ms.1`:
    /// the `event_id` bloom filter and the `time` minmax index skip the rest), current
    /// versions only: a leaf re-sequenced with another event (never below a head) no longer
    /// counts. Two statements (per [`CHUNK`] ids): the candidates, then the newest version of
    /// each.
    pub async fn leaves_of_events(
        client: &Client,
        event_ids: &[String],
        time_ms: (i64, i64),
    ) -> Result<Vec<LeafKey>> {
        let mut found: Vec<(String, u64)> = Vec::new();
        for chunk in event_ids.chunks(CHUNK) {
            let rows: Vec<(String, u64)> = client
                .query(
                    "SELECT DISTINCT workspace_id, leaf_index FROM log_leaves \
                     WHERE event_id IN ? AND time BETWEEN fromUnixTimestamp64Milli(?, 'UTC') \
                     AND fromUnixTimestamp64Milli(?, 'UTC')",
                )
                .bind(chunk)
                .bind(time_ms.0)
                .bind(time_ms.1)
                .fetch_all()
                .await
                .map_err(|e| Error::clickhouse("look up committed leaves", e))?;
            found.extend(rows);
        }
        let mut out = Vec::new();
        for chunk in found.chunks(CHUNK) {
            let rows: Vec<LeafKey> = client
                .query(
                    "SELECT workspace_id, leaf_index, \
                     toString(argMax(event_id, sequenced_at)) AS event_id \
                     FROM log_leaves WHERE (workspace_id, leaf_index) IN ? \
                     GROUP BY workspace_id, leaf_index",
                )
                .bind(chunk)
                .fetch_all()
                .await
                .map_err(|e| Error::clickhouse("read the current version of leaves", e))?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Per workspace, the largest checkpointed tree size.
    pub async fn checkpointed_sizes(client: &Client) -> Result<Vec<(String, u64)>> {
        client
            .query("SELECT workspace_id, max(tree_size) FROM log_checkpoints GROUP BY workspace_id")
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse("read log_checkpoints", e))
    }

    /// Per `(workspace, witness key name)`, the largest tree size the witness cosigned.
    pub async fn cosigned_sizes(client: &Client) -> Result<Vec<(String, String, u64)>> {
        client
            .query(
                "SELECT workspace_id, witness, max(tree_size) FROM log_cosignatures \
                 GROUP BY workspace_id, witness",
            )
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse("read log_cosignatures", e))
    }

    /// When `verifier_key` was first announced, if ever.
    pub async fn key_first_used(client: &Client, verifier_key: &str) -> Result<Option<i64>> {
        let v: Vec<i64> = client
            .query(
                "SELECT toUnixTimestamp64Milli(min(first_used)) FROM log_keys \
                 WHERE verifier_key = ? HAVING count() > 0",
            )
            .bind(verifier_key)
            .fetch_all()
            .await
            .map_err(|e| Error::clickhouse("read log_keys", e))?;
        Ok(v.into_iter().next())
    }

    /// The newest version (epoch ms) written to the leaves, tiles, heads and positions: the
    /// sequencer's versions stay above it even if the clock went back.
    pub async fn newest_version(client: &Client) -> Result<i64> {
        client
            .query(
                "SELECT toInt64(ifNull(greatest(\
                 (SELECT toUnixTimestamp64Milli(max(sequenced_at)) FROM log_leaves), \
                 (SELECT toUnixTimestamp64Milli(max(written_at)) FROM log_tiles), \
                 (SELECT toUnixTimestamp64Milli(max(updated_at)) FROM log_heads), \
                 (SELECT toUnixTimestamp64Milli(max(updated_at)) FROM log_positions)), 0))",
            )
            .fetch_one()
            .await
            .map_err(|e| Error::clickhouse("read the log tables' versions", e))
    }
}
