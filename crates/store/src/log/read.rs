//! Reads of the log's tables for the API, the export and the sequencer's restart (owned by
//! the API's author; the sequencer may add its restart reads at the end of this file).

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
