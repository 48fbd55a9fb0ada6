//! Batch: gathers one partition's rows and cuts batches by rows, bytes and time, following
//! recorded cut points when a range is consumed again. Pure; the caller supplies the clock.
//!
//! Why recorded cut points: a time cut depends on when messages arrived, so a replay after a
//! crash would cut elsewhere and the batch's deduplication token (derived from its first and
//! last offset) would not match the one ClickHouse already saw. The writer therefore records
//! every batch's `(first, last)` offsets *before* inserting it (`sink_batches`), and on
//! (re)assignment the batcher is given the recorded ranges at or after the resume offset:
//! it reproduces exactly those batches, then cuts freely again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use auditlog_store::events::EventRow;

/// When to cut a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Cut at this many rows.
    pub max_rows: usize,
    /// Cut when the messages reach this many bytes.
    pub max_bytes: usize,
    /// Cut this long after the batch's first message.
    pub max_wait: Duration,
}

/// A contiguous range of one partition's offsets, ready to be written and then committed.
/// Poison messages inside the range are already dead-lettered; they have no row.
///
/// Only the rows are kept, not the messages they were decoded from: that halves the memory a
/// batch holds. A row ClickHouse refuses is dead-lettered with its original message read
/// back from the topic at its offset ([`crate::originals`]): nothing is committed
/// before the batch is written, so the message is still there.
#[derive(Debug)]
pub struct Batch {
    /// First offset the batch covers.
    pub first: i64,
    /// Last offset the batch covers (the commit after writing it is `last + 1`).
    pub last: i64,
    /// The rows, in offset order.
    pub rows: Vec<EventRow>,
    /// Message bytes in the batch.
    pub bytes: usize,
    /// Whether this range was already recorded (a replay of a recorded batch).
    pub recorded: bool,
}

#[derive(Debug)]
struct Open {
    batch: Batch,
    opened: Instant,
    /// Set when reproducing a recorded batch: cut exactly at this offset.
    forced_last: Option<i64>,
}

/// One partition's batcher.
#[derive(Debug)]
pub struct PartitionBatcher {
    policy: Policy,
    open: Option<Open>,
    recorded: VecDeque<(i64, i64)>,
}

impl PartitionBatcher {
    /// A batcher following `recorded` cut ranges `(first, last)` first (any order, overlaps
    /// dropped).
    pub fn new(policy: Policy, mut recorded: Vec<(i64, i64)>) -> Self {
        recorded.sort_unstable();
        let mut kept: VecDeque<(i64, i64)> = VecDeque::new();
        for (f, l) in recorded {
            if l >= f && kept.back().is_none_or(|&(_, pl)| f > pl) {
                kept.push_back((f, l));
            }
        }
        Self {
            policy,
            open: None,
            recorded: kept,
        }
    }

    /// Adds the message at `offset` (`row` is `None` for a dead-lettered message) and returns
    /// the batches this completes (zero, one, or two when a gap closes a recorded batch).
    pub fn push(
        &mut self,
        offset: i64,
        row: Option<EventRow>,
        bytes: usize,
        now: Instant,
    ) -> Vec<Batch> {
        let mut done = Vec::new();
        // A recorded batch whose last offset never came (gap), or a free batch that would run
        // into the next recorded range: close it first.
        if let Some(open) = self.open.as_mut() {
            let close = match open.forced_last {
                Some(l) if offset > l => {
                    // The offsets up to `l` do not exist: the recorded range is complete.
                    open.batch.last = l;
                    true
                }
                Some(_) => false,
                None => self.recorded.front().is_some_and(|&(f, _)| f <= offset),
            };
            if close {
                done.extend(self.take());
            }
        }
        if self.open.is_none() {
            while self.recorded.front().is_some_and(|&(_, l)| l < offset) {
                self.recorded.pop_front();
            }
            let forced = self.recorded.front().copied().filter(|&(f, _)| f <= offset);
            if forced.is_some() {
                self.recorded.pop_front();
            }
            self.open = Some(Open {
                batch: Batch {
                    first: forced.map_or(offset, |(f, _)| f),
                    last: offset,
                    rows: Vec::new(),
                    bytes: 0,
                    recorded: forced.is_some(),
                },
                opened: now,
                forced_last: forced.map(|(_, l)| l),
            });
        }
        let Some(open) = self.open.as_mut() else {
            return done;
        };
        open.batch.last = offset;
        open.batch.bytes += bytes;
        if let Some(row) = row {
            open.batch.rows.push(row);
        }
        let cut = match open.forced_last {
            Some(l) => offset >= l,
            None => {
                open.batch.rows.len() >= self.policy.max_rows
                    || open.batch.bytes >= self.policy.max_bytes
            }
        };
        if cut {
            done.extend(self.take());
        }
        done
    }

    /// When the open batch must be cut by time, if one is open. A recorded batch waits for its
    /// last offset, but not forever (ten times the wait: its messages may have been deleted).
    pub fn deadline(&self) -> Option<Instant> {
        self.open.as_ref().map(|o| {
            let wait = if o.forced_last.is_some() {
                self.policy.max_wait * 10
            } else {
                self.policy.max_wait
            };
            o.opened + wait
        })
    }

    /// The open batch if its time is up.
    pub fn take_due(&mut self, now: Instant) -> Option<Batch> {
        if self.deadline().is_some_and(|d| d <= now) {
            self.take()
        } else {
            None
        }
    }

    /// The open batch, whatever its size (flush on revoke, shutdown or memory pressure).
    pub fn take(&mut self) -> Option<Batch> {
        self.open.take().map(|o| o.batch)
    }

    /// Bytes held in the open batch.
    pub fn pending_bytes(&self) -> usize {
        self.open.as_ref().map_or(0, |o| o.batch.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_event::synth::{Synth, SynthConfig};
    use auditlog_store::events::RowContext;

    fn row(offset: i64) -> EventRow {
        let e = Synth::new(SynthConfig::default()).next_event();
        EventRow::from_event(
            e,
            RowContext {
                partition: 0,
                offset,
                retention_days: 7,
            },
        )
    }

    fn policy() -> Policy {
        Policy {
            max_rows: 3,
            max_bytes: 1000,
            max_wait: Duration::from_secs(1),
        }
    }

    fn ranges(b: &[Batch]) -> Vec<(i64, i64, usize)> {
        b.iter().map(|b| (b.first, b.last, b.rows.len())).collect()
    }

    #[test]
    fn cuts_by_rows_bytes_and_time() {
        let t = Instant::now();
        let mut p = PartitionBatcher::new(policy(), vec![]);
        let mut out = Vec::new();
        for o in 0..7 {
            out.extend(p.push(o, Some(row(o)), 10, t));
        }
        assert_eq!(ranges(&out), vec![(0, 2, 3), (3, 5, 3)]);
        // Bytes.
        let out = p.push(7, Some(row(7)), 990, t);
        assert_eq!(ranges(&out), vec![(6, 7, 2)]);
        // Time.
        assert!(p.push(8, Some(row(8)), 1, t).is_empty());
        assert!(p.take_due(t + Duration::from_millis(999)).is_none());
        let b = p.take_due(t + Duration::from_secs(1)).unwrap();
        assert_eq!((b.first, b.last), (8, 8));
        assert!(p.deadline().is_none());
    }

    #[test]
    fn dead_lettered_messages_extend_the_range_without_a_row() {
        let t = Instant::now();
        let mut p = PartitionBatcher::new(policy(), vec![]);
        assert!(p.push(0, None, 5, t).is_empty());
        assert!(p.push(1, Some(row(1)), 5, t).is_empty());
        let b = p.take().unwrap();
        assert_eq!((b.first, b.last, b.rows.len(), b.bytes), (0, 1, 1, 10));
    }

    #[test]
    fn a_replay_reproduces_recorded_time_cuts() {
        // First run: a time cut after offsets 10..=11, then a row cut.
        let t = Instant::now();
        let mut first = PartitionBatcher::new(policy(), vec![]);
        first.push(10, Some(row(10)), 1, t);
        first.push(11, Some(row(11)), 1, t);
        let a = first.take_due(t + Duration::from_secs(2)).unwrap();
        let mut b = Vec::new();
        for o in 12..15 {
            b.extend(first.push(o, Some(row(o)), 1, t));
        }
        let recorded = vec![(a.first, a.last), (b[0].first, b[0].last)];
        // Replay from 10 with no time passing: the same two batches, then free cuts again.
        let mut replay = PartitionBatcher::new(policy(), recorded.clone());
        let mut out = Vec::new();
        for o in 10..18 {
            out.extend(replay.push(o, Some(row(o)), 1, t));
        }
        assert_eq!(ranges(&out), vec![(10, 11, 2), (12, 14, 3), (15, 17, 3)]);
        assert!(out[0].recorded && out[1].recorded && !out[2].recorded);
    }

    #[test]
    fn a_replay_starting_inside_or_after_recorded_ranges() {
        let t = Instant::now();
        let mut p = PartitionBatcher::new(policy(), vec![(0, 4), (5, 6), (20, 21)]);
        let mut out = Vec::new();
        // Resumes at 5: (0, 4) is stale; (5, 6) is reproduced; the free batch from 7 must stop
        // before the recorded 20.
        for o in [5, 6, 7, 8] {
            out.extend(p.push(o, Some(row(o)), 1, t));
        }
        out.extend(p.push(20, Some(row(20)), 1, t));
        out.extend(p.push(21, Some(row(21)), 1, t));
        assert_eq!(ranges(&out), vec![(5, 6, 2), (7, 8, 2), (20, 21, 2)]);
    }

    #[test]
    fn a_recorded_batch_whose_end_is_missing_is_closed_by_the_next_offset() {
        let t = Instant::now();
        let mut p = PartitionBatcher::new(policy(), vec![(0, 5)]);
        let mut out = Vec::new();
        out.extend(p.push(0, Some(row(0)), 1, t));
        out.extend(p.push(9, Some(row(9)), 1, t));
        assert_eq!(ranges(&out), vec![(0, 5, 1)]);
        assert_eq!(p.deadline(), Some(t + Duration::from_secs(1)));
    }
}
