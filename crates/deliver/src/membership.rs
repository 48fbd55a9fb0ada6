//! Which streams this worker delivers: membership + rendezvous hashing, no consumer group.
//!
//! Every worker heartbeats into `stream_workers` (server clock); the live workers are those
//! with a heartbeat within `streams.worker_expiry`. A stream belongs to the live worker with
//! the highest [`score`]`(stream_id, worker_id)`: every worker computes the same owner from
//! the same membership, and a worker joining or leaving moves only the streams it wins or
//! held. A stream this worker newly gains becomes deliverable only after the takeover grace
//! (`worker_expiry + request_timeout`): by then the previous owner has seen the new membership
//! (or, unable to heartbeat, stopped on its own) and its last request has ended, so no batch
//! is delivered by two workers at once. When no other worker heartbeated within the grace,
//! nobody else can be delivering and a gained stream starts at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// The rendezvous score of `worker_id` for `stream_id` (first 8 bytes of SHA-256, so every
/// worker, whatever its build, computes the same).
pub fn score(stream_id: &str, worker_id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(stream_id.as_bytes());
    h.update([0]);
    h.update(worker_id.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

/// The live worker that owns `stream_id` (highest score; ties by id), `None` without workers.
pub fn owner<'a>(stream_id: &str, live: &'a [String]) -> Option<&'a str> {
    live.iter()
        .max_by_key(|w| (score(stream_id, w), w.as_str()))
        .map(String::as_str)
}

/// What changed for this worker after a membership update.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Streams that became deliverable (grace over).
    pub start: Vec<String>,
    /// Streams this worker must stop delivering (lost, or no longer listed).
    pub stop: Vec<String>,
}

/// This worker's view of its streams: owned since when, deliverable or still in grace.
#[derive(Debug)]
pub struct Ownership {
    me: String,
    grace: Duration,
    /// Owned stream -> when it becomes deliverable.
    owned: BTreeMap<String, Instant>,
    /// Owned streams already started.
    running: BTreeSet<String>,
}

impl Ownership {
    /// Ownership for worker `me` with takeover `grace`.
    pub fn new(me: &str, grace: Duration) -> Self {
        Self {
            me: me.to_owned(),
            grace,
            owned: BTreeMap::new(),
            running: BTreeSet::new(),
        }
    }

    /// Recomputes ownership of `streams` over `live` workers (this worker counted live
    /// whatever the table says, as long as `self_ok`: its own heartbeat is recent). `alone`:
    /// no other worker heartbeated within the grace (a gained stream needs no wait).
    pub fn update(
        &mut self,
        now: Instant,
        live: &[String],
        streams: &[String],
        self_ok: bool,
        alone: bool,
    ) -> Change {
        let mut members: Vec<String> = live.iter().filter(|w| **w != self.me).cloned().collect();
        if self_ok {
            members.push(self.me.clone());
        }
        let mine: BTreeSet<&String> = streams
            .iter()
            .filter(|s| owner(s, &members) == Some(self.me.as_str()))
            .collect();
        let mut change = Change::default();
        let lost: Vec<String> = self
            .owned
            .keys()
            .filter(|s| !mine.contains(s))
            .cloned()
            .collect();
        for s in lost {
            self.owned.remove(&s);
            if self.running.remove(&s) {
                change.stop.push(s);
            }
        }
        for s in mine {
            let wait = if alone { Duration::ZERO } else { self.grace };
            self.owned.entry(s.clone()).or_insert(now + wait);
        }
        for (s, ready) in &self.owned {
            if *ready <= now && self.running.insert(s.clone()) {
                change.start.push(s.clone());
            }
        }
        change
    }

    /// Streams owned (deliverable or in grace).
    pub fn owned(&self) -> usize {
        self.owned.len()
    }

    /// Streams being delivered.
    pub fn running(&self) -> impl Iterator<Item = &String> {
        self.running.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn rendezvous_spreads_streams_and_moves_only_the_leavers() {
        let streams = ids("str_", 1000);
        let three = ids("w", 3);
        let owners: Vec<&str> = streams.iter().map(|s| owner(s, &three).unwrap()).collect();
        for w in &three {
            let n = owners.iter().filter(|o| **o == w).count();
            assert!((250..420).contains(&n), "{w} owns {n} of 1000");
        }
        // w2 leaves: only its streams move.
        let two = ids("w", 2);
        for (s, before) in streams.iter().zip(&owners) {
            let after = owner(s, &two).unwrap();
            if *before != "w2" {
                assert_eq!(after, *before, "{s} moved although its owner stayed");
            }
        }
        assert_eq!(owner("s", &[]), None);
    }

    #[test]
    fn gained_streams_wait_the_grace_unless_alone_and_lost_ones_stop() {
        let grace = Duration::from_secs(10);
        let t0 = Instant::now();
        let streams = ids("str_", 50);
        let mut a = Ownership::new("a", grace);
        // Alone: everything starts at once.
        let c = a.update(t0, &["a".into()], &streams, true, true);
        assert_eq!(c.start.len(), 50);
        // b joins: a stops what b wins, at once.
        let both = vec!["a".to_string(), "b".to_string()];
        let c = a.update(t0, &both, &streams, true, false);
        let mut b_wins: Vec<_> = streams
            .iter()
            .filter(|s| owner(s, &both) == Some("b"))
            .cloned()
            .collect();
        b_wins.sort();
        assert!(!b_wins.is_empty());
        assert_eq!(c.stop, b_wins);
        assert!(c.start.is_empty());
        // b, seeing a live, waits the grace before starting its gains.
        let mut b = Ownership::new("b", grace);
        let c = b.update(t0, &both, &streams, true, false);
        assert!(c.start.is_empty() && b.owned() == b_wins.len());
        let c = b.update(t0 + grace / 2, &both, &streams, true, false);
        assert!(c.start.is_empty());
        let c = b.update(t0 + grace, &both, &streams, true, false);
        assert_eq!(c.start, b_wins);
        // b dies: a gains its streams back, after the grace.
        let c = a.update(t0 + grace, &["a".into()], &streams, true, false);
        assert!(c.start.is_empty());
        let c = a.update(t0 + grace * 2, &["a".into()], &streams, true, false);
        assert_eq!(c.start, b_wins);
        // a's own heartbeat fails: it stops everything.
        let c = a.update(t0 + grace * 3, &[], &streams, false, false);
        assert_eq!(c.stop.len(), 50);
        assert_eq!(a.running().count(), 0);
    }

    #[test]
    fn a_stream_no_longer_listed_stops() {
        let mut a = Ownership::new("a", Duration::from_secs(1));
        let t = Instant::now();
        let c = a.update(t, &["a".into()], &ids("s", 2), true, true);
        assert_eq!(c.start, ["s0", "s1"]);
        let c = a.update(t, &["a".into()], &ids("s", 1), true, true);
        assert_eq!(c.stop, ["s1"]);
    }
}
