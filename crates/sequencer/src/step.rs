//! One step of the sequencer: read the rows after the positions, skip the events that are
//! already leaves, append the rest to their workspace logs, and write, in this order, ONE
//! insert into each of `log_leaves`, `log_leaves_by_event` (the same rows, the inclusion
//! proof's lookup), `log_tiles`, `log_heads` (the commit point) and `log_positions`. A failure anywhere leaves the stored state a crash would leave: the caller
//! reloads it ([`Sequencer::reload`]) and the rows are read again; leaves past a head are
//! re-sequenced (the same ones: the order is the rows' offset order), committed ones skipped.

use std::collections::{BTreeMap, HashMap, HashSet};

use auditlog_store::log::read::sequencer as read;
use auditlog_store::log::rows::{HeadRow, LeafRow, PositionRow, TileRow};
use auditlog_store::log::{leaf_of, write};
use clickhouse::Client;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::logs::Logs;
use crate::metrics as m;
use crate::source::{self, SourceRow};

/// How often the partitions' highest offsets are read while a backlog is worked off.
const HIGHEST_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The shard of a single server (the only layout the sequencer runs on for now).
pub const SHARD: u32 = 1;

/// What a step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Rows read.
    pub rows: usize,
    /// Leaves appended.
    pub leaves: usize,
    /// A partition's read was cut by the page size: more is waiting.
    pub backlog: bool,
}

/// The sequencer's state: the logs, the read positions, and the version clock.
#[derive(Debug)]
pub struct Sequencer {
    client: Client,
    page_rows: u32,
    /// The logs (heads, appenders).
    pub logs: Logs,
    positions: BTreeMap<i32, i64>,
    highest: BTreeMap<i32, i64>,
    /// When `highest` was last read, and whether the last step left rows waiting.
    highest_read: Option<std::time::Instant>,
    backlog: bool,
    version: i64,
    steps: u64,
    /// Per workspace: when the oldest leaf no checkpoint covers yet was stored (epoch ms).
    pub uncovered_since: HashMap<String, i64>,
}

/// The clock, epoch ms.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Sequencer {
    /// The state as stored: positions, heads, and the newest version written.
    pub async fn start(client: Client, page_rows: u32) -> Result<Self> {
        let mut s = Self {
            client,
            page_rows,
            logs: Logs::default(),
            positions: BTreeMap::new(),
            highest: BTreeMap::new(),
            highest_read: None,
            backlog: false,
            version: 0,
            steps: 0,
            uncovered_since: HashMap::new(),
        };
        s.reload().await?;
        if write::backfill_leaves_by_event(&s.client).await? {
            tracing::info!("filled log_leaves_by_event from log_leaves (migration 0013)");
        }
        Ok(s)
    }

    /// Forgets everything in memory and reads the stored state again (as after a restart).
    pub async fn reload(&mut self) -> Result<()> {
        self.positions = read::positions(&self.client)
            .await?
            .into_iter()
            .filter(|p| p.shard == SHARD)
            .map(|p| (p.kafka_partition, p.kafka_offset))
            .collect();
        self.logs = Logs::load(&self.client).await?;
        self.version = self.version.max(read::newest_version(&self.client).await?);
        self.highest = source::highest_offsets(&self.client, false)
            .await?
            .into_iter()
            .collect();
        Ok(())
    }

    /// A version above every one written so far (the clock, unless it went back).
    fn next_version(&mut self) -> i64 {
        self.version = now_ms().max(self.version + 1);
        self.version
    }

    /// One step (see the module docs).
    pub async fn step(&mut self) -> Result<Outcome> {
        self.steps += 1;
        // While a backlog is being worked off the known bounds still have rows past the
        // positions: the highest offsets are read again at most every HIGHEST_EVERY, not every
        // step (a read over the last two minutes of rows, mostly the backlog itself).
        let fresh = self
            .highest_read
            .is_some_and(|at| self.backlog && at.elapsed() < HIGHEST_EVERY);
        if !fresh {
            let recent = !self.steps.is_multiple_of(source::FULL_SCAN_EVERY);
            for (p, max) in source::highest_offsets(&self.client, recent).await? {
                let e = self.highest.entry(p).or_insert(max);
                *e = (*e).max(max);
            }
            self.highest_read = Some(std::time::Instant::now());
        }
        let waiting = self
            .highest
            .iter()
            .filter(|(p, max)| **max > self.positions.get(p).copied().unwrap_or(-1))
            .count();
        if waiting == 0 {
            self.backlog = false;
            metrics::gauge!(m::SEQUENCING_LAG).set(0.0);
            return Ok(Outcome::default());
        }
        let per_partition = (self.page_rows / waiting as u32).max(100);
        let ranges = source::ranges(&self.positions, &self.highest, per_partition);
        let rows = source::read(&self.client, &ranges, per_partition).await?;
        let moved = source::advanced(&ranges, &rows, per_partition);
        let backlog = ranges.iter().any(|r| {
            moved
                .get(&r.partition)
                .is_some_and(|&to| to < self.highest[&r.partition])
        });
        let committed = self.committed_among(&rows).await?;
        let workspaces: Vec<&str> = {
            let set: HashSet<&str> = rows.iter().map(|r| r.0.workspace_id.as_str()).collect();
            set.into_iter().collect()
        };
        self.logs.ensure(&self.client, &workspaces).await?;
        let version = self.next_version();
        let batch = self.append(&rows, &committed, version)?;
        let positions: Vec<PositionRow> = moved
            .iter()
            .filter(|(p, to)| self.positions.get(p) != Some(to))
            .map(|(&p, &to)| PositionRow {
                shard: SHARD,
                kafka_partition: p,
                kafka_offset: to,
                updated_at: version,
            })
            .collect();
        let token = token(&ranges, &batch.leaves);
        write::leaves(&self.client, &batch.leaves, &format!("{token}-leaves")).await?;
        write::leaves_by_event(&self.client, &batch.leaves, &format!("{token}-by-event")).await?;
        write::tiles(&self.client, &batch.tiles, &format!("{token}-tiles")).await?;
        write::heads(&self.client, &batch.heads).await?;
        write::positions(&self.client, &positions).await?;
        // Committed: the state in memory follows.
        self.logs.commit(&batch.heads);
        self.positions.extend(moved);
        self.backlog = self
            .highest
            .iter()
            .any(|(p, max)| *max > self.positions.get(p).copied().unwrap_or(-1));
        for (ws, since) in batch.oldest {
            let e = self.uncovered_since.entry(ws).or_insert(since);
            *e = (*e).min(since);
        }
        let now = now_ms();
        let lag = rows.iter().map(|r| r.0.inserted_ms).min().unwrap_or(now);
        metrics::gauge!(m::SEQUENCING_LAG).set(((now - lag).max(0)) as f64 / 1000.0);
        metrics::counter!(m::LEAVES).increment(batch.leaves.len() as u64);
        metrics::counter!(m::DUPLICATES).increment((rows.len() - batch.leaves.len()) as u64);
        Ok(Outcome {
            rows: rows.len(),
            leaves: batch.leaves.len(),
            backlog,
        })
    }

    /// The `(workspace, event id)` of the rows that are already committed leaves of their
    /// workspace (leaf index below its head): one lookup for the whole step.
    async fn committed_among(&self, rows: &[SourceRow]) -> Result<HashSet<(String, String)>> {
        if rows
            .iter()
            .all(|r| self.logs.committed(&r.0.workspace_id) == 0)
        {
            return Ok(HashSet::new());
        }
        let ids: Vec<String> = {
            let set: HashSet<&str> = rows.iter().map(|r| r.0.id.as_str()).collect();
            set.into_iter().map(str::to_owned).collect()
        };
        let lo = rows.iter().map(|r| r.0.time_ms).min().unwrap_or(0);
        let hi = rows.iter().map(|r| r.0.time_ms).max().unwrap_or(0);
        Ok(read::leaves_of_events(&self.client, &ids, (lo, hi))
            .await?
            .into_iter()
            .filter(|k| k.leaf_index < self.logs.committed(&k.workspace_id))
            .map(|k| (k.workspace_id, k.event_id))
            .collect())
    }

    /// Appends the rows that are not leaves yet, in order; the rows of the four inserts.
    fn append(
        &mut self,
        rows: &[SourceRow],
        committed: &HashSet<(String, String)>,
        version: i64,
    ) -> Result<Batch> {
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let mut batch = Batch::default();
        for (ev, partition, offset) in rows {
            let key = (ev.workspace_id.as_str(), ev.id.as_str());
            if committed.contains(&(key.0.to_owned(), key.1.to_owned())) || !seen.insert(key) {
                continue;
            }
            let leaf = leaf_of(ev).map_err(|source| Error::Leaf {
                event_id: ev.id.clone(),
                source,
            })?;
            let hash = leaf.leaf_hash();
            let appender = self.logs.appender(&ev.workspace_id);
            let index = appender.size();
            appender.append(hash);
            batch.leaves.push(LeafRow {
                workspace_id: ev.workspace_id.clone(),
                leaf_index: index,
                event_id: ev.event_id(),
                time: ev.time_ms,
                content_sha256: leaf.content_sha256,
                leaf_hash: hash,
                kafka_partition: *partition,
                kafka_offset: *offset,
                sequenced_at: version,
            });
            let e = batch
                .oldest
                .entry(ev.workspace_id.clone())
                .or_insert(ev.inserted_ms);
            *e = (*e).min(ev.inserted_ms);
        }
        for ws in batch.oldest.keys() {
            let appender = self.logs.appender(ws);
            for tile in appender.take_changed() {
                batch.tiles.push(TileRow {
                    workspace_id: ws.clone(),
                    tile_level: tile.id.level,
                    tile_index: tile.id.index,
                    width: tile.hashes.len() as u16,
                    hashes: tile.to_bytes(),
                    written_at: version,
                });
            }
            batch.heads.push(HeadRow {
                workspace_id: ws.clone(),
                tree_size: appender.size(),
                root_hash: appender.root(),
                updated_at: version,
            });
        }
        Ok(batch)
    }
}

/// The rows a step inserts.
#[derive(Debug, Default)]
struct Batch {
    leaves: Vec<LeafRow>,
    tiles: Vec<TileRow>,
    heads: Vec<HeadRow>,
    /// Per workspace appended to: the oldest `inserted_at` of its new leaves.
    oldest: BTreeMap<String, i64>,
}

/// The insert deduplication token of a step: its ranges and a digest of its leaves (a token
/// must only ever name the same rows; a re-sequenced step with other leaves gets another).
fn token(ranges: &[source::Range], leaves: &[LeafRow]) -> String {
    let mut h = Sha256::new();
    for l in leaves {
        h.update(l.workspace_id.as_bytes());
        h.update([0]);
        h.update(l.leaf_index.to_be_bytes());
        h.update(l.leaf_hash);
    }
    let span: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}:{}-{}", r.partition, r.after + 1, r.upto))
        .collect();
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("log-step-{}-{}", span.join(","), &digest[..32])
}
