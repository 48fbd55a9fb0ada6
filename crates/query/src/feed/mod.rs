//! The feed: a workspace's events in the order they became visible, read by position
//! (`GET /v1/feed` and the stream worker).
//!
//! A position ([`FeedPosition`]) is, per Kafka partition, the last offset delivered. A page
//! is the next matching rows in `(kafka_partition, kafka_offset)` order; a partition's rows
//! become visible strictly in offset order (the consumer writes a partition's batches in
//! order, each in one INSERT), so following `next` from any position returns every row once,
//! whatever its event time.
//!
//! - [`sql`]: the statements (the list's filter and retention, positions as index-friendly
//!   ranges, read settings for clusters).
//! - [`page`]: cutting a page out of a scan and the dedup rule (pure).
//! - [`cursor`]: the API's opaque, signed feed cursor.
//! - [`notifier`]: one shared change ticker for long polls and the stream worker.
//!
//! A page costs three statements: one scan (positions and keys, one snapshot), then the bodies
//! and the copies delivered before, in parallel.
//!
//! ```no_run
//! # async fn run(reader: auditlog_query::Reader) -> auditlog_query::Result<()> {
//! use auditlog_store::feed::FeedStart;
//! let filter = auditlog_query::Filter::default();
//! let mut pos = reader.feed_start("ws_1", FeedStart::Beginning).await?;
//! loop {
//!     let page = reader.feed_page("ws_1", &filter, &pos, 1000).await?;
//!     for item in &page.items { /* deliver item.event */ }
//!     pos = page.next;
//!     if page.caught_up { break; }
//! }
//! # Ok(()) }
//! ```

pub mod cursor;
pub mod notifier;
pub mod page;
pub mod sql;

use std::collections::{HashMap, HashSet};

use auditlog_store::events::StoredEvent;
use auditlog_store::feed::{FeedPosition, FeedStart};
use clickhouse::Row;
use serde::Deserialize;

pub use notifier::Notifier;

use crate::filter::Filter;
use crate::reader::Reader;
use crate::Result;

/// One event of a page with where it was read from.
#[derive(Debug, Clone)]
pub struct FeedItem {
    /// The full row, payloads included.
    pub event: StoredEvent,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
}

/// A page of the feed.
#[derive(Debug, Clone)]
pub struct FeedPage {
    /// At most `limit` events, in `(partition, offset)` order.
    pub items: Vec<FeedItem>,
    /// `after` advanced past every item AND past the rows skipped as duplicates or filtered
    /// out.
    pub next: FeedPosition,
    /// Fewer than `limit` matching rows remained after `after`.
    pub caught_up: bool,
}

/// Windows of the page scan, in offsets per row of the page: a window of `4 x limit` offsets
/// holds a full page when the workspace has at least a quarter of its partition's events;
/// `256 x limit` down to 1/256; sparser workspaces (or filters) fall through to the full scan,
/// which is cheap when the workspace, or what remains of it, is small.
const WINDOWS: [i64; 2] = [4, 256];

#[derive(Row, Deserialize)]
struct Head {
    p: i32,
    last: i64,
}

#[derive(Row, Deserialize)]
struct Lag {
    n: u64,
    oldest_ms: i64,
}

#[derive(Row, Deserialize)]
struct Id {
    id: String,
}

/// A feed statement with [`sql::READ_SETTINGS`].
fn query(s: &crate::sql::Sql, client: &clickhouse::Client) -> clickhouse::query::Query {
    sql::READ_SETTINGS
        .iter()
        .fold(s.query(client), |q, (k, v)| q.with_setting(*k, *v))
}

impl Reader {
    /// The `limit` events of `ws` matching `filter` after `after`, and the position after them.
    pub async fn feed_page(
        &self,
        ws: &str,
        filter: &Filter,
        after: &FeedPosition,
        limit: u32,
    ) -> Result<FeedPage> {
        let limit = limit.max(1);
        let cut = self.feed_scan(ws, filter, after, limit).await?;
        if cut.keys.is_empty() {
            return Ok(FeedPage {
                items: Vec::new(),
                next: cut.next,
                caught_up: cut.caught_up,
            });
        }
        let keys: Vec<(i64, String)> = cut.keys.iter().map(|k| (k.time_ms, k.id.clone())).collect();
        let mut ranges: Vec<(i32, Option<i64>, i64)> = Vec::new();
        for k in &cut.keys {
            if ranges.last().is_none_or(|r| r.0 != k.partition) {
                ranges.push((
                    k.partition,
                    after.offsets.get(&k.partition).copied(),
                    k.offset,
                ));
            }
            if let Some(r) = ranges.last_mut() {
                r.2 = k.offset;
            }
        }
        let bodies_sql = sql::bodies(ws, filter, &ranges);
        let bodies = self.timed("feed rows", || {
            query(&bodies_sql, self.client()).fetch_all::<StoredEvent>()
        });
        let delivered = async {
            if after.offsets.is_empty() {
                return Ok(Vec::new());
            }
            let copies = sql::delivered_copies(ws, &keys, after);
            self.timed("feed copies", || {
                query(&copies, self.client()).fetch_all::<Id>()
            })
            .await
        };
        let (bodies, delivered) = tokio::try_join!(bodies, delivered)?;
        let delivered: HashSet<String> = delivered.into_iter().map(|i| i.id).collect();
        let mut by_id: HashMap<String, StoredEvent> =
            bodies.into_iter().map(|b| (b.id.clone(), b)).collect();
        let items = page::dedup(cut.keys, &delivered)
            .into_iter()
            .filter_map(|k| {
                // A row gone between the scan and this read was deleted by retention.
                by_id.remove(&k.id).map(|event| FeedItem {
                    event,
                    partition: k.partition,
                    offset: k.offset,
                })
            })
            .collect();
        Ok(FeedPage {
            items,
            next: cut.next,
            caught_up: cut.caught_up,
        })
    }

    /// The page's keys: first through growing windows of offsets after the position (cheap
    /// through `idx_feed_position` however long the backlog), the first full page wins;
    /// otherwise one scan of everything after the position, which tells whether the reader is
    /// caught up.
    async fn feed_scan(
        &self,
        ws: &str,
        filter: &Filter,
        after: &FeedPosition,
        limit: u32,
    ) -> Result<page::Cut> {
        // No partition to window for a reader at the beginning: the full scan at once.
        let windows = if after.offsets.is_empty() {
            &[][..]
        } else {
            &WINDOWS[..]
        };
        for w in windows {
            let cut = self
                .scan_once(ws, filter, after, limit, Some(w * i64::from(limit)))
                .await?;
            if cut.keys.len() == limit as usize {
                return Ok(cut);
            }
        }
        self.scan_once(ws, filter, after, limit, None).await
    }

    async fn scan_once(
        &self,
        ws: &str,
        filter: &Filter,
        after: &FeedPosition,
        limit: u32,
        window: Option<i64>,
    ) -> Result<page::Cut> {
        let scan = sql::scan(ws, filter, after, limit, window);
        let scanned: Vec<page::Scanned> = self
            .timed("feed scan", || query(&scan, self.client()).fetch_all())
            .await?;
        Ok(page::cut(after, scanned, limit, window.is_none()))
    }

    /// Where a new reader of `ws` starts: `Beginning` = nothing delivered; `Now` = every
    /// partition at its highest offset; `Time(t)` = every partition at its highest offset
    /// stored before `t` (partitions whose rows are all newer start at nothing).
    pub async fn feed_start(&self, ws: &str, start: FeedStart) -> Result<FeedPosition> {
        let before = match start {
            FeedStart::Beginning => return Ok(FeedPosition::beginning()),
            FeedStart::Now => None,
            FeedStart::Time(ms) => Some(ms),
        };
        let heads = sql::heads(ws, before);
        let rows: Vec<Head> = self
            .timed("feed start", || query(&heads, self.client()).fetch_all())
            .await?;
        Ok(FeedPosition {
            offsets: rows.into_iter().map(|h| (h.p, h.last)).collect(),
        })
    }

    /// Events after `after` (matching `filter`) and the `inserted_at` (ms) of the oldest of
    /// them. Copies of a re-emitted event count each.
    pub async fn feed_lag(
        &self,
        ws: &str,
        filter: &Filter,
        after: &FeedPosition,
    ) -> Result<(u64, Option<i64>)> {
        let lag = sql::lag(ws, filter, after);
        let row: Lag = self
            .timed("feed lag", || query(&lag, self.client()).fetch_one())
            .await?;
        Ok((row.n, (row.n > 0).then_some(row.oldest_ms)))
    }
}
