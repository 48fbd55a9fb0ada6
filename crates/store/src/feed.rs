//! Positions in a workspace's feed: the order in which its events became visible.
//!
//! Every stored row carries the Kafka partition and offset it was read from
//! (`kafka_partition`, `kafka_offset`). The producer keys events by workspace, so one
//! workspace's events are in one partition, in the order the broker accepted them, and the
//! consumer makes a partition's rows visible strictly in offset order (its batches are
//! written and committed in order by one task). A feed position is therefore, per partition,
//! the last offset already delivered: every row after it in any partition is still to come,
//! whatever its event time. After the topic's partition count changes, a workspace's new
//! events land in another partition; that partition simply starts at "nothing delivered".
//!
//! These types are the contract between the feed (`auditlog_query`'s feed reads and
//! `GET /v1/feed`) and the stream worker, which persists a [`FeedPosition`] per destination.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a feed reader is: for each Kafka partition, the last offset it was given.
/// A partition that is absent means nothing of it was given yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedPosition {
    /// Partition -> last offset delivered (inclusive).
    pub offsets: BTreeMap<i32, i64>,
}

impl FeedPosition {
    /// The position at which nothing is delivered yet (the beginning of retention).
    pub fn beginning() -> Self {
        Self::default()
    }

    /// Whether the row at `(partition, offset)` comes after this position (still to deliver).
    pub fn is_after(&self, partition: i32, offset: i64) -> bool {
        self.offsets
            .get(&partition)
            .is_none_or(|&last| offset > last)
    }

    /// Move past the row at `(partition, offset)`. Never moves back.
    pub fn advance(&mut self, partition: i32, offset: i64) {
        let last = self.offsets.entry(partition).or_insert(offset);
        if offset > *last {
            *last = offset;
        }
    }
}

/// Where a new reader (a feed client without a cursor, a stream created or replayed) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "time_ms")]
pub enum FeedStart {
    /// Everything still inside the workspace's retention.
    Beginning,
    /// Events that became visible (were stored) at or after this time, epoch milliseconds.
    Time(i64),
    /// Only events that become visible from now on.
    Now,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_moves_forward_per_partition_only() {
        let mut p = FeedPosition::beginning();
        assert!(p.is_after(0, 0));
        p.advance(0, 10);
        p.advance(0, 4);
        assert!(!p.is_after(0, 10));
        assert!(p.is_after(0, 11));
        assert!(
            p.is_after(3, 0),
            "another partition starts at nothing delivered"
        );
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"offsets":{"0":10}}"#);
        assert_eq!(serde_json::from_str::<FeedPosition>(&json).unwrap(), p);
    }

    #[test]
    fn starts_serialize_as_tagged_json() {
        assert_eq!(
            serde_json::to_string(&FeedStart::Time(5)).unwrap(),
            r#"{"from":"time","time_ms":5}"#
        );
        assert_eq!(
            serde_json::to_string(&FeedStart::Now).unwrap(),
            r#"{"from":"now"}"#
        );
    }
}
