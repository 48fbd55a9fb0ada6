//! Group watchdog: notices partitions that nobody in the group consumes and rejoins the group.
//!
//! A healthy Kafka group coordinator hands every partition to a live member. Tansu 0.6.0's
//! sometimes does not: after a member is SIGKILLed, the assignment the group settles on can
//! give the dead member's partitions to nobody (every live member heartbeats happily with an
//! empty or partial assignment, and no rebalance ever comes). Offsets are committed only after
//! the insert, so nothing is lost, but nothing moves either.
//!
//! Every `check_every`, this task reads the group's committed offset and the high watermark of
//! each partition of the topic that is not assigned to this process. A partition whose
//! committed offset has not moved for `stall_after` while messages wait behind it is stalled;
//! if ClickHouse answers (a ClickHouse outage stalls every partition and is the pipeline's
//! business, not the group's), the consumer leaves the group and joins again, which makes the
//! coordinator form the group anew from its live members. With a broker that assigns properly
//! it never fires: an assigned partition moves, or its owner is alive and its lag is its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::consume::SinkConsumer;

/// Counter: times the watchdog made this consumer rejoin its group.
pub const REJOINS: &str = "auditlog_sink_group_rejoins_total";

/// What one look at a partition found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The partition.
    pub partition: i32,
    /// The group's committed offset (the low watermark when nothing is committed).
    pub committed: i64,
    /// The partition's high watermark.
    pub high: i64,
}

/// Tracks how long each partition's committed offset has stood still with messages behind it.
#[derive(Debug)]
pub struct StallTracker {
    stall_after: Duration,
    /// Per partition: the committed offset last seen (`i64::MIN` when the partition had no
    /// lag) and since when it has not moved.
    seen: HashMap<i32, (i64, Instant)>,
}

impl StallTracker {
    /// A tracker that calls a partition stalled after `stall_after` without progress.
    pub fn new(stall_after: Duration) -> Self {
        Self {
            stall_after,
            seen: HashMap::new(),
        }
    }

    /// Records what was seen at `now` (partitions assigned to this process are left out by the
    /// caller); returns the partitions stalled for at least `stall_after`, with their lag.
    pub fn observe(&mut self, now: Instant, seen: &[Observation]) -> Vec<(i32, i64)> {
        let mut stalled = Vec::new();
        let present: Vec<i32> = seen.iter().map(|o| o.partition).collect();
        self.seen.retain(|p, _| present.contains(p));
        for o in seen {
            let lag = o.high - o.committed;
            let entry = self.seen.entry(o.partition).or_insert((o.committed, now));
            if lag <= 0 || entry.0 != o.committed {
                // Moving, or nothing to do: the clock starts at the next look that finds
                // messages waiting without progress. An idle partition is kept at "no
                // committed offset", so its first messages get the whole `stall_after` too.
                *entry = (if lag <= 0 { i64::MIN } else { o.committed }, now);
                continue;
            }
            if now.duration_since(entry.1) >= self.stall_after {
                stalled.push((o.partition, lag));
            }
        }
        stalled
    }

    /// Forgets everything (after a rejoin: the new owners get a fresh `stall_after`).
    pub fn reset(&mut self) {
        self.seen.clear();
    }
}

/// Runs until `stop`: looks every `check_every`, rejoins when a partition stalls.
pub async fn run(
    consumer: Arc<SinkConsumer>,
    topic: String,
    clickhouse: clickhouse::Client,
    check_every: Duration,
    stall_after: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tracker = StallTracker::new(stall_after);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(check_every) => {}
        }
        let (c, t) = (consumer.clone(), topic.clone());
        let seen = match tokio::task::spawn_blocking(move || unassigned(&c, &t)).await {
            Ok(Ok(seen)) => seen,
            Ok(Err(e)) => {
                debug!(error = %e, "group watchdog: cannot read offsets this time");
                continue;
            }
            Err(_) => return,
        };
        let stalled = tracker.observe(Instant::now(), &seen);
        if stalled.is_empty() {
            continue;
        }
        if clickhouse.query("SELECT 1").execute().await.is_err() {
            // Every partition waits for ClickHouse: not the group's fault.
            tracker.reset();
            continue;
        }
        warn!(
            ?stalled,
            after = ?stall_after,
            "partitions (partition, lag) not consumed by anyone in the group; rejoining it"
        );
        metrics::counter!(REJOINS).increment(1);
        let c = consumer.clone();
        let t = topic.clone();
        let rejoined = tokio::task::spawn_blocking(move || {
            c.unsubscribe();
            c.subscribe(&[&t])
        })
        .await;
        if let Ok(Err(e)) = rejoined {
            warn!(error = %e, "group watchdog: subscribe again failed");
        }
        tracker.reset();
    }
}

/// Committed offset and high watermark of every partition of `topic` not assigned to us.
fn unassigned(c: &SinkConsumer, topic: &str) -> rdkafka::error::KafkaResult<Vec<Observation>> {
    let timeout = Duration::from_secs(5);
    let mine: Vec<i32> = c
        .assignment()?
        .elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect();
    let metadata = c.fetch_metadata(Some(topic), timeout)?;
    let others: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .filter(|p| !mine.contains(p))
        .collect();
    if others.is_empty() {
        return Ok(Vec::new());
    }
    let mut tpl = TopicPartitionList::new();
    for p in &others {
        tpl.add_partition(topic, *p);
    }
    let committed = c.committed_offsets(tpl, timeout)?;
    let mut seen = Vec::with_capacity(others.len());
    for p in others {
        let (low, high) = c.fetch_watermarks(topic, p, timeout)?;
        let committed = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => low,
        };
        seen.push(Observation {
            partition: p,
            committed,
            high,
        });
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(partition: i32, committed: i64, high: i64) -> Observation {
        Observation {
            partition,
            committed,
            high,
        }
    }

    #[test]
    fn a_partition_stalls_only_with_lag_and_no_progress_for_the_whole_time() {
        let t0 = Instant::now();
        let s = Duration::from_secs(20);
        let mut w = StallTracker::new(s);
        assert!(w.observe(t0, &[o(0, 10, 50), o(1, 5, 5)]).is_empty());
        // Partition 0 moves: its clock restarts.
        assert!(w.observe(t0 + s, &[o(0, 20, 50), o(1, 5, 5)]).is_empty());
        // Partition 1 has no lag, however long it stands still.
        assert!(w.observe(t0 + 3 * s, &[o(0, 20, 60), o(1, 5, 5)]) == vec![(0, 40)]);
    }

    #[test]
    fn new_messages_on_an_idle_partition_start_its_clock() {
        let t0 = Instant::now();
        let s = Duration::from_secs(20);
        let mut w = StallTracker::new(s);
        assert!(w.observe(t0, &[o(2, 7, 7)]).is_empty());
        assert!(w.observe(t0 + 2 * s, &[o(2, 7, 9)]).is_empty());
        assert!(w.observe(t0 + 2 * s + s / 2, &[o(2, 7, 9)]).is_empty());
        assert_eq!(w.observe(t0 + 3 * s, &[o(2, 7, 9)]), vec![(2, 2)]);
    }

    #[test]
    fn a_partition_that_became_ours_is_forgotten_and_reset_forgets_all() {
        let t0 = Instant::now();
        let s = Duration::from_secs(20);
        let mut w = StallTracker::new(s);
        assert!(w.observe(t0, &[o(0, 1, 9), o(1, 1, 9)]).is_empty());
        // Partition 0 is now assigned to us (left out); when it comes back its clock restarts.
        assert_eq!(w.observe(t0 + s, &[o(1, 1, 9)]), vec![(1, 8)]);
        assert!(w.observe(t0 + s, &[o(0, 1, 9), o(1, 1, 9)]) == vec![(1, 8)]);
        w.reset();
        assert!(w.observe(t0 + 2 * s, &[o(0, 1, 9), o(1, 1, 9)]).is_empty());
    }
}
