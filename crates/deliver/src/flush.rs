//! The ONE batched writer of the worker's state. Stream tasks record acknowledged cursors and
//! their figures in the [`Ledger`] (memory only); the flusher saves every dirty cursor in one
//! insert each `streams.cursor_flush` (1 s) and every owned stream's status in one insert each
//! `streams.status_flush` (5 s), never one ClickHouse insert per delivery. A crash loses at
//! most the cursors acknowledged since the last save: those batches are delivered again.
//!
//! Cursors are fenced by generation: after a replay (a newer generation) a record of an older
//! one is dropped, so a worker still finishing the old generation never overrides a replay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use auditlog_query::{Filter, Reader};
use auditlog_store::FeedPosition;
use auditlog_streams::store::StreamStore;
use auditlog_streams::{CursorRecord, State, StreamStatus};
use tokio::sync::{watch, Semaphore};
use tracing::warn;

use crate::metrics;

/// What the flusher needs to compute a stream's lag.
#[derive(Debug, Clone)]
pub struct LagProbe {
    /// The workspace.
    pub workspace_id: String,
    /// The stream's filter.
    pub filter: Filter,
    /// The stream's last read position (acknowledged or not: lag counts what is unread or unacknowledged).
    pub position: FeedPosition,
    /// The last read found nothing more (lag 0 once acknowledged).
    pub caught_up: bool,
}

#[derive(Debug)]
struct Entry {
    status: StreamStatus,
    probe: Option<LagProbe>,
    /// Stopped: saved once more, then forgotten.
    leaving: bool,
}

#[derive(Debug, Default)]
struct Inner {
    dirty: HashMap<String, CursorRecord>,
    generation: HashMap<String, u64>,
    streams: HashMap<String, Entry>,
}

/// The worker's memory of cursors to save and of its streams' figures.
#[derive(Debug, Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A stream task starts in `generation` with the stored `status` (counts carry on).
    pub fn start(&self, generation: u64, status: StreamStatus) {
        let mut g = self.lock();
        let id = status.stream_id.clone();
        let gen = g.generation.entry(id.clone()).or_insert(generation);
        *gen = (*gen).max(generation);
        let fence = *gen;
        if g.dirty.get(&id).is_some_and(|c| c.generation < fence) {
            g.dirty.remove(&id);
        }
        g.streams.insert(
            id,
            Entry {
                status,
                probe: None,
                leaving: false,
            },
        );
    }

    /// A cursor to save (acknowledged position); ignored when a newer generation is known.
    pub fn ack(&self, record: CursorRecord) {
        let mut g = self.lock();
        let fence = g.generation.get(&record.stream_id).copied().unwrap_or(0);
        if record.generation < fence {
            return;
        }
        g.dirty.insert(record.stream_id.clone(), record);
    }

    /// Updates the figures of a stream this worker delivers.
    pub fn status(&self, stream_id: &str, f: impl FnOnce(&mut StreamStatus)) {
        if let Some(e) = self.lock().streams.get_mut(stream_id) {
            f(&mut e.status);
        }
    }

    /// A copy of a stream's figures.
    pub fn get(&self, stream_id: &str) -> Option<StreamStatus> {
        self.lock().streams.get(stream_id).map(|e| e.status.clone())
    }

    /// Where a stream's reads are, for its lag.
    pub fn probe(&self, stream_id: &str, probe: LagProbe) {
        if let Some(e) = self.lock().streams.get_mut(stream_id) {
            e.probe = Some(probe);
        }
    }

    /// The stream's task stopped: its status is saved once more (in `state` when given), then
    /// forgotten.
    pub fn stop(&self, stream_id: &str, state: Option<State>) {
        if let Some(e) = self.lock().streams.get_mut(stream_id) {
            e.leaving = true;
            if let Some(s) = state {
                e.status.state = s;
            }
        }
    }

    /// Takes the cursors to save.
    fn take_cursors(&self) -> Vec<CursorRecord> {
        self.lock().dirty.drain().map(|(_, c)| c).collect()
    }

    /// Puts back cursors whose save failed (unless a newer one came meanwhile).
    fn put_back(&self, records: Vec<CursorRecord>) {
        let mut g = self.lock();
        for r in records {
            g.dirty.entry(r.stream_id.clone()).or_insert(r);
        }
    }

    fn probes(&self) -> Vec<(String, LagProbe)> {
        self.lock()
            .streams
            .iter()
            .filter_map(|(id, e)| e.probe.clone().map(|p| (id.clone(), p)))
            .collect()
    }

    fn statuses(&self) -> Vec<StreamStatus> {
        self.lock()
            .streams
            .values()
            .map(|e| e.status.clone())
            .collect()
    }

    fn forget_leaving(&self) {
        self.lock().streams.retain(|_, e| !e.leaving);
    }

    /// Streams by state and the largest lag, for the gauges.
    fn gauges(&self) {
        let g = self.lock();
        let mut by_state = [0u32; 3];
        let mut max_lag = 0f64;
        for e in g.streams.values().filter(|e| !e.leaving) {
            let i = match e.status.state {
                State::Active => 0,
                State::Failing => 1,
                State::Paused => 2,
            };
            by_state[i] += 1;
            max_lag = max_lag.max(e.status.lag_seconds);
        }
        for (state, n) in ["active", "failing", "paused"].iter().zip(by_state) {
            ::metrics::gauge!(metrics::STREAMS, "state" => *state).set(f64::from(n));
        }
        ::metrics::gauge!(metrics::MAX_LAG).set(max_lag);
    }
}

/// Saves dirty cursors now (one insert); failed ones stay dirty.
pub async fn flush_cursors(ledger: &Ledger, store: &StreamStore) -> bool {
    let records = ledger.take_cursors();
    if records.is_empty() {
        return true;
    }
    match store.save_cursors(&records).await {
        Ok(()) => true,
        Err(e) => {
            ::metrics::counter!(metrics::FLUSH_ERRORS).increment(1);
            warn!(error = %e, cursors = records.len(), "saving cursors failed; retrying at the next flush");
            ledger.put_back(records);
            false
        }
    }
}

/// Computes lags (feed queries bounded by `queries`) and saves every status (one insert).
pub async fn flush_statuses(
    ledger: &Ledger,
    store: &StreamStore,
    reader: &Reader,
    queries: &Semaphore,
) -> bool {
    let now_ms = chrono::Utc::now().timestamp_millis();
    for (id, p) in ledger.probes() {
        let lag = if p.caught_up {
            Some((0, None))
        } else {
            let _permit = queries.acquire().await;
            reader
                .feed_lag(&p.workspace_id, &p.filter, &p.position)
                .await
                .map_err(|e| warn!(stream_id = %id, error = %e, "lag query failed"))
                .ok()
        };
        if let Some((events, oldest)) = lag {
            ledger.status(&id, |s| {
                s.lag_events = events;
                s.lag_seconds = oldest.map_or(0.0, |ms| ((now_ms - ms).max(0) as f64) / 1000.0);
            });
        }
    }
    ledger.gauges();
    let mut statuses = ledger.statuses();
    if statuses.is_empty() {
        return true;
    }
    for s in &mut statuses {
        s.updated_at_ms = now_ms;
    }
    match store.save_statuses(&statuses).await {
        Ok(()) => {
            ledger.forget_leaving();
            true
        }
        Err(e) => {
            ::metrics::counter!(metrics::FLUSH_ERRORS).increment(1);
            warn!(error = %e, "saving stream statuses failed; retrying at the next flush");
            false
        }
    }
}

/// The flusher: cursors every `cursor_every`, statuses every `status_every`, until `stop`;
/// then the caller saves the last ones ([`flush_cursors`], [`flush_statuses`]).
pub async fn run(
    ledger: Arc<Ledger>,
    store: StreamStore,
    reader: Reader,
    queries: Arc<Semaphore>,
    cursor_every: Duration,
    status_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut cursors = tokio::time::interval(cursor_every);
    let mut statuses = tokio::time::interval(status_every);
    cursors.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    statuses.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cursors.tick() => { flush_cursors(&ledger, &store).await; }
            _ = statuses.tick() => { flush_statuses(&ledger, &store, &reader, &queries).await; }
            () = crate::worker::until_stopped(&mut stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_store::FeedStart;

    fn rec(id: &str, generation: u64, offset: i64) -> CursorRecord {
        let mut p = FeedPosition::beginning();
        p.advance(0, offset);
        CursorRecord {
            stream_id: id.into(),
            generation,
            position: Some(p),
            start: FeedStart::Beginning,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn newest_cursor_wins_and_older_generations_are_fenced() {
        let l = Ledger::default();
        l.ack(rec("a", 0, 1));
        l.ack(rec("a", 0, 5));
        l.ack(rec("b", 0, 2));
        let mut taken = l.take_cursors();
        taken.sort_by(|x, y| x.stream_id.cmp(&y.stream_id));
        assert_eq!(taken, [rec("a", 0, 5), rec("b", 0, 2)]);
        // Replay: generation 1 starts; an old task's late ack is dropped.
        l.ack(rec("a", 0, 9));
        l.start(1, crate::stream::initial_status("a", "w", None));
        assert!(l.take_cursors().is_empty());
        l.ack(rec("a", 0, 10));
        assert!(l.take_cursors().is_empty());
        l.ack(rec("a", 1, 0));
        // A failed save puts back, unless a newer record came meanwhile.
        let taken = l.take_cursors();
        l.ack(rec("a", 1, 3));
        l.put_back(taken);
        assert_eq!(l.take_cursors(), [rec("a", 1, 3)]);
    }
}
