//! Reading `events` in the log's order: per Kafka partition, in offset order, after the
//! position the sequencer reached. A partition's rows become visible strictly in offset order
//! (the consumer writes and commits a partition's batches in order), so once offset `M` of a
//! partition is visible, every row at or below `M` that will ever exist is visible too: a
//! read bounded by an offset seen earlier is complete and can move the position to that bound
//! even over offsets that have no row (dead-lettered messages).
//!
//! Reads are bounded by offset ranges the `idx_feed_position` minmax index (migration 0009)
//! can use to skip granules, so a step reads only the granules after the position.

use std::collections::BTreeMap;

use auditlog_store::events::{StoredEvent, DETAIL_PROJECTION};
use auditlog_store::Error as StoreError;
use clickhouse::Client;

/// A row read: the event, its Kafka partition and offset.
pub type SourceRow = (StoredEvent, i32, i64);

/// How far back, in seconds of `inserted_at`, each step looks for partitions' new highest
/// offsets (a full scan of the partitions runs at startup and every [`FULL_SCAN_EVERY`] steps).
const RECENT_SECONDS: u32 = 120;
/// Steps between full scans of the highest offsets.
pub const FULL_SCAN_EVERY: u64 = 1500;

/// Per Kafka partition, the highest offset stored (`recent`: among rows inserted in the last
/// [`RECENT_SECONDS`], which the `inserted_at` minmax index makes cheap).
pub async fn highest_offsets(client: &Client, recent: bool) -> Result<Vec<(i32, i64)>, StoreError> {
    let filter = if recent {
        format!("WHERE inserted_at >= now64(3) - INTERVAL {RECENT_SECONDS} SECOND")
    } else {
        String::new()
    };
    client
        .query(&format!(
            "SELECT kafka_partition, max(kafka_offset) FROM events {filter} \
             GROUP BY kafka_partition ORDER BY kafka_partition"
        ))
        .fetch_all()
        .await
        .map_err(|e| StoreError::clickhouse("read the highest offset of each partition", e))
}

/// One partition's range to read: offsets `after + 1 ..= upto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Kafka partition.
    pub partition: i32,
    /// Last offset sequenced (`-1`: none).
    pub after: i64,
    /// Highest offset to read (at most one seen stored before this read).
    pub upto: i64,
}

/// The ranges of one step: for each partition with rows past its position, up to `per_partition`
/// offsets past it, never past its highest stored offset.
pub fn ranges(
    positions: &BTreeMap<i32, i64>,
    highest: &BTreeMap<i32, i64>,
    per_partition: u32,
) -> Vec<Range> {
    highest
        .iter()
        .filter_map(|(&partition, &max)| {
            let after = positions.get(&partition).copied().unwrap_or(-1);
            (max > after).then(|| Range {
                partition,
                after,
                upto: max.min(after.saturating_add(i64::from(per_partition))),
            })
        })
        .collect()
}

/// The rows of `ranges`, in (partition, offset) order, at most `per_partition` a partition
/// (copies of one offset, written twice beyond the insert deduplication window, count).
pub async fn read(
    client: &Client,
    ranges: &[Range],
    per_partition: u32,
) -> Result<Vec<SourceRow>, StoreError> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let or: Vec<String> = ranges
        .iter()
        .map(|r| {
            format!(
                "(kafka_partition = {} AND kafka_offset > {} AND kafka_offset <= {})",
                r.partition, r.after, r.upto
            )
        })
        .collect();
    let sql = format!(
        "SELECT {DETAIL_PROJECTION}, kafka_partition, kafka_offset FROM events \
         WHERE {} ORDER BY kafka_partition, kafka_offset LIMIT {per_partition} BY kafka_partition",
        or.join(" OR ")
    );
    client
        .query(&sql)
        .fetch_all::<SourceRow>()
        .await
        .map_err(|e| StoreError::clickhouse("read events to sequence", e))
}

/// Where each partition's position moves after reading `rows` of `ranges`: a partition whose
/// read came back short (fewer than `per_partition` rows) was read to its bound; otherwise to
/// its last row (the rest of the range comes next step).
pub fn advanced(ranges: &[Range], rows: &[SourceRow], per_partition: u32) -> BTreeMap<i32, i64> {
    let mut count: BTreeMap<i32, (u32, i64)> = BTreeMap::new();
    for (_, p, o) in rows {
        let e = count.entry(*p).or_insert((0, *o));
        e.0 += 1;
        e.1 = e.1.max(*o);
    }
    ranges
        .iter()
        .map(|r| {
            let to = match count.get(&r.partition) {
                Some(&(n, last)) if n >= per_partition => last,
                _ => r.upto,
            };
            (r.partition, to)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_start_after_the_position_and_stop_at_the_highest_offset_seen() {
        let pos = BTreeMap::from([(0, 10), (1, 50)]);
        let high = BTreeMap::from([(0, 1000), (1, 50), (2, 3)]);
        let r = ranges(&pos, &high, 100);
        assert_eq!(
            r,
            vec![
                Range {
                    partition: 0,
                    after: 10,
                    upto: 110
                },
                Range {
                    partition: 2,
                    after: -1,
                    upto: 3
                },
            ]
        );
    }

    #[test]
    fn a_short_read_moves_to_the_bound_a_full_one_to_its_last_row() {
        let r = vec![
            Range {
                partition: 0,
                after: 10,
                upto: 110,
            },
            Range {
                partition: 2,
                after: -1,
                upto: 3,
            },
        ];
        let ev = |p, o| (test_event(), p, o);
        let rows = vec![ev(0, 11), ev(0, 12), ev(2, 0)];
        assert_eq!(advanced(&r, &rows, 2), BTreeMap::from([(0, 12), (2, 3)]));
        assert_eq!(advanced(&r, &rows, 3), BTreeMap::from([(0, 110), (2, 3)]));
    }

    fn test_event() -> StoredEvent {
        StoredEvent {
            id: String::new(),
            workspace_id: String::new(),
            bucket: String::new(),
            event: String::new(),
            time_ms: 0,
            actor_type: String::new(),
            actor_id: String::new(),
            actor_name: String::new(),
            actor_meta: String::new(),
            targets: String::new(),
            description: String::new(),
            remote_ip: String::new(),
            user_agent: String::new(),
            location: String::new(),
            outcome: String::new(),
            failure_reason: String::new(),
            correlation_id: String::new(),
            version: 1,
            request: String::new(),
            response: String::new(),
            inserted_ms: 0,
        }
    }
}
