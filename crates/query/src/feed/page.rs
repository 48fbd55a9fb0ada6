//! Cutting a page out of a scan, and the dedup rule: pure functions over what the scan
//! statement ([`super::sql::scan`]) returned.
//!
//! A page is the first `limit` matching rows in `(kafka_partition, kafka_offset)` order. Its
//! `next` position moves each partition the page covered completely to the highest offset the
//! scan saw there (matching or not: filtered-out rows are not read again), and the partition it
//! ended in to its last row. Because a partition's rows become visible strictly in offset order,
//! every row at or below a highest offset seen was visible to the scan: nothing is skipped.

use std::collections::HashSet;

use auditlog_store::feed::FeedPosition;
use clickhouse::Row;
use serde::Deserialize;

/// One partition of a page scan.
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct Scanned {
    /// Kafka partition.
    pub p: i32,
    /// Highest offset after the position in this partition (any row).
    pub last: i64,
    /// The first matching rows after the position: `(offset, time_ms, event_id)`, by offset.
    pub keys: Vec<(i64, i64, String)>,
}

/// One row of a page, before its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Event time, epoch ms (with `id`, the row's primary key).
    pub time_ms: i64,
    /// `event_id` as text.
    pub id: String,
}

/// The rows of a page and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// At most `limit` rows, in `(partition, offset)` order (duplicates not yet dropped).
    pub keys: Vec<Key>,
    /// `after` moved past everything this page covered.
    pub next: FeedPosition,
    /// Fewer than `limit` matching rows remained: the page reaches the end of what is visible.
    pub caught_up: bool,
}

/// The page of `limit` rows after `after`, from a scan (partitions in ascending order).
/// `complete`: the scan looked at every row after `after` (no window), so a short page means
/// caught up.
pub fn cut(after: &FeedPosition, scanned: Vec<Scanned>, limit: u32, complete: bool) -> Cut {
    let limit = limit as usize;
    let mut next = after.clone();
    let mut keys = Vec::with_capacity(limit.min(1024));
    for part in scanned {
        let room = limit - keys.len();
        if part.keys.len() < room {
            // The whole partition fits: covered up to the highest offset seen.
            keys.extend(part.keys.into_iter().map(|k| key(part.p, k)));
            next.advance(part.p, part.last);
            continue;
        }
        // The page ends inside this partition, at its `room`-th matching row.
        keys.extend(part.keys.into_iter().take(room).map(|k| key(part.p, k)));
        if let Some(end) = keys.last() {
            next.advance(part.p, end.offset);
        }
        return Cut {
            keys,
            next,
            caught_up: false,
        };
    }
    Cut {
        keys,
        next,
        caught_up: complete,
    }
}

fn key(partition: i32, (offset, time_ms, id): (i64, i64, String)) -> Key {
    Key {
        partition,
        offset,
        time_ms,
        id,
    }
}

/// The dedup rule: a row is dropped when its event id was delivered before (a copy at or
/// before the position, `delivered`) or appears earlier in the same page.
pub fn dedup(keys: Vec<Key>, delivered: &HashSet<String>) -> Vec<Key> {
    let mut seen: HashSet<String> = HashSet::with_capacity(keys.len());
    keys.into_iter()
        .filter(|k| !delivered.contains(&k.id) && seen.insert(k.id.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(p: i32, last: i64, offsets: &[i64]) -> Scanned {
        Scanned {
            p,
            last,
            keys: offsets
                .iter()
                .map(|&o| (o, 0, format!("e{p}-{o}")))
                .collect(),
        }
    }

    fn pos(pairs: &[(i32, i64)]) -> FeedPosition {
        FeedPosition {
            offsets: pairs.iter().copied().collect(),
        }
    }

    #[test]
    fn a_short_page_covers_every_partition_to_its_highest_offset() {
        // Partition 0 ends at 20 (filtered-out rows after 12); partition 1 has no match.
        let c = cut(
            &pos(&[(0, 3)]),
            vec![scanned(0, 20, &[5, 12]), scanned(1, 9, &[])],
            10,
            true,
        );
        assert!(c.caught_up);
        assert_eq!(c.keys.len(), 2);
        assert_eq!(c.next, pos(&[(0, 20), (1, 9)]));
    }

    #[test]
    fn a_full_page_stops_at_its_last_row_and_leaves_later_partitions() {
        let c = cut(
            &pos(&[(2, 1)]),
            vec![
                scanned(0, 7, &[1, 7]),
                scanned(1, 50, &[10, 11, 12]),
                scanned(2, 9, &[2]),
            ],
            4,
            true,
        );
        assert!(!c.caught_up);
        let got: Vec<(i32, i64)> = c.keys.iter().map(|k| (k.partition, k.offset)).collect();
        assert_eq!(got, vec![(0, 1), (0, 7), (1, 10), (1, 11)]);
        assert_eq!(c.next, pos(&[(0, 7), (1, 11), (2, 1)]));
    }

    #[test]
    fn a_page_that_fills_exactly_at_a_partitions_end_is_not_caught_up() {
        let c = cut(&pos(&[]), vec![scanned(0, 9, &[4, 9])], 2, true);
        assert!(!c.caught_up);
        assert_eq!(c.next, pos(&[(0, 9)]));
        // A windowed scan never says caught up: rows may lie beyond its window.
        let c = cut(&pos(&[(0, 1)]), vec![scanned(0, 9, &[4])], 2, false);
        assert!(!c.caught_up);
        assert_eq!(c.next, pos(&[(0, 9)]));
    }

    #[test]
    fn duplicates_are_dropped_after_delivery_and_within_the_page() {
        let k = |o: i64, id: &str| Key {
            partition: 0,
            offset: o,
            time_ms: 0,
            id: id.into(),
        };
        let delivered: HashSet<String> = ["old".to_owned()].into();
        let kept = dedup(
            vec![k(1, "a"), k(2, "old"), k(3, "a"), k(4, "b")],
            &delivered,
        );
        assert_eq!(kept, vec![k(1, "a"), k(4, "b")]);
    }
}
