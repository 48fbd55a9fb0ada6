//! One stream's delivery loop (one tokio task per owned stream): read the feed after the
//! stream's position, render, cut batches, deliver each until the destination acknowledges it,
//! then record the position after it for the flusher. A failed batch is retried unchanged
//! (same `batch_id`, same events) with backoff; a stream failing for `auto_pause_after`
//! without a success is paused. A caught-up stream waits on the workspace's change notifier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_query::feed::FeedPage;
use auditlog_query::Filter;
use auditlog_store::FeedPosition;
use auditlog_streams::{CursorRecord, Desired, State, Stream, StreamStatus};
use tokio::sync::{watch, OwnedSemaphorePermit};
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::batch::{self, Cut};
use crate::destination::{self, Destination, Limits};
use crate::flush::LagProbe;
use crate::worker::Shared;

/// Longest a caught-up stream waits on the notifier before reading again anyway.
const IDLE_WAIT: Duration = Duration::from_secs(10);
/// Largest feed page.
const PAGE_LIMIT: usize = 1000;
/// Bytes of the in-flight cap a filling stream reserves up front. A destination with larger
/// batches (S3 objects of up to 8 MiB over a window) takes more only while the cap has room
/// and otherwise sends what it has, so many filling S3 streams cannot hold the cap and stall
/// the others.
const FILL_RESERVE: usize = 1 << 20;
/// Wait after a failed feed read.
const READ_RETRY: Duration = Duration::from_secs(1);

/// A fresh status for a stream (before anything was stored about it).
pub fn initial_status(
    stream_id: &str,
    worker_id: &str,
    stored: Option<StreamStatus>,
) -> StreamStatus {
    let mut s = stored.unwrap_or(StreamStatus {
        stream_id: stream_id.to_owned(),
        state: State::Active,
        last_error: String::new(),
        last_error_at_ms: None,
        failing_since_ms: None,
        delivered_events: 0,
        delivered_batches: 0,
        failed_attempts: 0,
        redelivered_events: 0,
        lag_events: 0,
        lag_seconds: 0.0,
        worker_id: worker_id.to_owned(),
        updated_at_ms: 0,
    });
    s.worker_id = worker_id.to_owned();
    if s.state == State::Paused {
        // Resumed: failing again counts from the next failure.
        s.state = State::Active;
        s.failing_since_ms = None;
    }
    s
}

/// Why a stream task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Asked to stop (ownership moved, stream paused or changed, shutdown).
    Stopped,
    /// Failing too long: the worker paused it.
    AutoPaused,
}

struct Task {
    shared: Arc<Shared>,
    stream: Stream,
    generation: u64,
    start: auditlog_store::FeedStart,
    dest: Box<dyn Destination>,
    kind: &'static str,
    limits: Limits,
    filter: Filter,
    backoff: Backoff,
    stop: watch::Receiver<bool>,
}

/// Runs `stream` from `cursor` until stopped or auto-paused.
pub async fn run(
    shared: Arc<Shared>,
    stream: Stream,
    cursor: CursorRecord,
    stop: watch::Receiver<bool>,
) -> Ended {
    let dest = destination::build(&stream, &shared.http);
    let kind = auditlog_streams::store::destination_kind(&stream.spec.destination);
    let limits = dest.limits();
    let backoff = Backoff::new(
        shared.cfg.retry_initial_backoff,
        shared.cfg.retry_max_backoff,
    );
    let filter = match Filter::from_pairs(&stream.spec.filter) {
        Ok(f) => f,
        Err(e) => {
            let reason = format!("the stream's filter is invalid: {e}");
            warn!(stream_id = %stream.stream_id, %reason, "not delivering");
            fail_status(&shared, &stream.stream_id, &reason);
            let mut stop = stop;
            let _ = stop.wait_for(|s| *s).await;
            return Ended::Stopped;
        }
    };
    let mut task = Task {
        shared,
        generation: cursor.generation,
        start: cursor.start,
        stream,
        dest,
        kind,
        limits,
        filter,
        backoff,
        stop,
    };
    let Some(position) = task.resolve(cursor.position).await else {
        return Ended::Stopped;
    };
    task.deliver_from(position).await
}

fn fail_status(shared: &Shared, stream_id: &str, reason: &str) {
    let now = chrono::Utc::now().timestamp_millis();
    shared.ledger.status(stream_id, |s| {
        s.state = State::Failing;
        s.last_error = reason.to_owned();
        s.last_error_at_ms = Some(now);
        s.failing_since_ms.get_or_insert(now);
    });
}

/// Reads a stream's feed pages, retrying failed reads until stopped.
struct Reading {
    shared: Arc<Shared>,
    stream_id: String,
    ws: String,
    filter: Filter,
    stop: watch::Receiver<bool>,
}

impl Reading {
    async fn page(&self, after: &FeedPosition, limit: usize) -> Option<FeedPage> {
        loop {
            let got = {
                let _q = self.shared.feed_queries.acquire().await;
                self.shared
                    .reader
                    .feed_page(
                        &self.ws,
                        &self.filter,
                        after,
                        limit.clamp(1, PAGE_LIMIT) as u32,
                    )
                    .await
            };
            match got {
                Ok(p) => return Some(p),
                Err(e) => {
                    warn!(stream_id = %self.stream_id, error = %e, "feed read failed; retrying");
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        () = tokio::time::sleep(READ_RETRY) => {}
                        () = crate::worker::until_stopped(&mut stop) => {}
                    }
                    if *self.stop.borrow() {
                        return None;
                    }
                }
            }
        }
    }
}

impl Task {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `d`; `false` when stopped meanwhile.
    async fn sleep(&mut self, d: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = crate::worker::until_stopped(&mut stop) => {}
        }
        !self.stopped()
    }

    fn record(&self, position: &FeedPosition) {
        self.shared.ledger.ack(CursorRecord {
            stream_id: self.stream.stream_id.clone(),
            generation: self.generation,
            position: Some(position.clone()),
            start: self.start,
            updated_at_ms: chrono::Utc::now().timestamp_millis(),
        });
    }

    /// The stored position, or the generation's start resolved (and saved at once, so a
    /// restart does not resolve "now" again later and skip what came between).
    async fn resolve(&mut self, stored: Option<FeedPosition>) -> Option<FeedPosition> {
        if let Some(p) = stored {
            return Some(p);
        }
        loop {
            let got = {
                let _q = self.shared.feed_queries.acquire().await;
                self.shared
                    .reader
                    .feed_start(&self.stream.spec.workspace_id, self.start)
                    .await
            };
            match got {
                Ok(p) => {
                    self.record(&p);
                    return Some(p);
                }
                Err(e) => {
                    warn!(stream_id = %self.stream.stream_id, error = %e, "resolving the stream's start failed");
                    if !self.sleep(READ_RETRY).await {
                        return None;
                    }
                }
            }
        }
    }

    /// What reading pages needs, apart from the task (so a read can run while the task
    /// delivers).
    fn reading(&self) -> Reading {
        Reading {
            shared: self.shared.clone(),
            stream_id: self.stream.stream_id.clone(),
            ws: self.stream.spec.workspace_id.clone(),
            filter: self.filter.clone(),
            stop: self.stop.clone(),
        }
    }

    fn probe(&self, position: &FeedPosition, caught_up: bool) {
        self.shared.ledger.probe(
            &self.stream.stream_id,
            LagProbe {
                workspace_id: self.stream.spec.workspace_id.clone(),
                filter: self.filter.clone(),
                position: position.clone(),
                caught_up,
            },
        );
    }

    /// Byte permits of the in-flight cap (KiB units, at most the whole cap).
    async fn permits(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let units = (bytes.div_ceil(1024).max(1) as u32).min(self.shared.inflight_units);
        self.shared
            .inflight
            .clone()
            .acquire_many_owned(units)
            .await
            .ok()
    }

    /// More byte permits for a filling batch, only if the cap has room right now.
    fn try_more(&self, permit: &mut Option<OwnedSemaphorePermit>, bytes: usize) -> bool {
        let units = (bytes.div_ceil(1024).max(1) as u32).min(self.shared.inflight_units);
        match self.shared.inflight.clone().try_acquire_many_owned(units) {
            Ok(more) => {
                match permit {
                    Some(held) => held.merge(more),
                    None => *permit = Some(more),
                }
                true
            }
            Err(_) => false,
        }
    }

    async fn deliver_from(&mut self, mut pos: FeedPosition) -> Ended {
        let ws = self.stream.spec.workspace_id.clone();
        let max_events = self.limits.max_events.max(1);
        let hold = self.limits.max_wait.max(Duration::ZERO);
        let reading = self.reading();
        let mut prefetched: Option<FeedPage> = None;
        loop {
            // Fill: read pages until the batch limits are reached or the feed is caught up.
            let reserve = self.limits.max_bytes.min(FILL_RESERVE);
            let mut permit = self.permits(reserve).await;
            let mut reserved = reserve;
            let mut pending = Vec::new();
            let mut bytes = 0usize;
            let mut end = pos.clone();
            let mut first_at: Option<Instant> = None;
            loop {
                if self.stopped() {
                    return Ended::Stopped;
                }
                let page = match prefetched.take() {
                    Some(p) => p,
                    None => {
                        let room = PAGE_LIMIT.max(max_events) - pending.len().min(PAGE_LIMIT);
                        match reading.page(&end, room).await {
                            Some(p) => p,
                            None => return Ended::Stopped,
                        }
                    }
                };
                let caught_up = page.caught_up;
                let mut failed = false;
                for item in &page.items {
                    match batch::render(self.stream.spec.format, item) {
                        Ok(r) => {
                            bytes += r.json.len();
                            pending.push(r);
                        }
                        Err(reason) => {
                            // Never skipped: the stream fails (and is retried) until fixed.
                            warn!(stream_id = %self.stream.stream_id, %reason, "render failed");
                            fail_status(&self.shared, &self.stream.stream_id, &reason);
                            let wait = self.backoff.next(None);
                            if !self.sleep(wait).await {
                                return Ended::Stopped;
                            }
                            pending.clear();
                            bytes = 0;
                            end = pos.clone();
                            first_at = None;
                            failed = true;
                            break;
                        }
                    }
                }
                if failed {
                    continue; // read the same events again
                }
                end = page.next;
                self.probe(&end, caught_up && pending.is_empty());
                if pending.len() >= max_events || bytes >= self.limits.max_bytes {
                    break;
                }
                if bytes > reserved {
                    // Beyond the reservation: grow it if the cap has room, else send now.
                    if !self.try_more(&mut permit, bytes - reserved) {
                        break;
                    }
                    reserved = bytes;
                }
                if !caught_up {
                    continue;
                }
                if pending.is_empty() {
                    if end != pos {
                        // Rows skipped (filtered out, duplicates): remember them as read.
                        pos = end.clone();
                        self.record(&pos);
                    }
                    // Idle: give the memory back, wait for the workspace to change.
                    permit = None;
                    let changed = tokio::select! {
                        c = self.shared.notifier.changed_since(&ws, &end, IDLE_WAIT) => c,
                        () = crate::worker::until_stopped(&mut self.stop) => return Ended::Stopped,
                    };
                    if changed && !self.sleep(self.shared.cfg.batch_wait).await {
                        return Ended::Stopped;
                    }
                    if permit.is_none() {
                        permit = self.permits(reserve).await;
                        reserved = reserve;
                    }
                    continue;
                }
                let since = *first_at.get_or_insert_with(Instant::now);
                let left = hold.saturating_sub(since.elapsed());
                if left.is_zero() {
                    break;
                }
                tokio::select! {
                    _ = self.shared.notifier.changed_since(&ws, &end, left) => {}
                    () = crate::worker::until_stopped(&mut self.stop) => return Ended::Stopped,
                }
            }
            // Send: every batch in order, each until acknowledged.
            let cuts = batch::cut(
                &self.stream.stream_id,
                &ws,
                self.generation,
                &pos,
                &end,
                pending,
                self.limits,
            );
            // While the batches go out, the next page is read (after all of them).
            let delivering = async {
                for cut in cuts {
                    self.deliver(&cut, &mut permit).await?;
                    pos = cut.after;
                    self.record(&pos);
                }
                Ok::<(), Ended>(())
            };
            let (delivered, next) = tokio::join!(delivering, reading.page(&end, PAGE_LIMIT));
            if let Err(ended) = delivered {
                return ended;
            }
            prefetched = next;
            drop(permit);
        }
    }

    /// Delivers one batch until acknowledged (or stopped, or auto-paused).
    async fn deliver(
        &mut self,
        cut: &Cut,
        permit: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<(), Ended> {
        let id = self.stream.stream_id.clone();
        let n = cut.batch.events.len() as u64;
        let kind = self.kind;
        let mut attempts = 0u32;
        loop {
            if attempts > 0 && self.stopped() {
                return Err(Ended::Stopped);
            }
            if permit.is_none() {
                *permit = self.permits(cut.batch.bytes()).await;
            }
            let result = self.dest.deliver(&cut.batch).await;
            let now = chrono::Utc::now().timestamp_millis();
            match result {
                Ok(()) => {
                    ::metrics::counter!(crate::metrics::DELIVERIES, "kind" => kind, "outcome" => "ok")
                        .increment(1);
                    ::metrics::counter!(crate::metrics::DELIVERED_EVENTS, "kind" => kind)
                        .increment(n);
                    let latency = ::metrics::histogram!(crate::metrics::LATENCY, "kind" => kind);
                    for e in &cut.batch.events {
                        latency.record(((now - e.inserted_ms).max(0) as f64) / 1000.0);
                    }
                    let redelivered = if attempts > 0 { n } else { 0 };
                    if redelivered > 0 {
                        ::metrics::counter!(crate::metrics::REDELIVERED_EVENTS, "kind" => kind)
                            .increment(redelivered);
                    }
                    self.shared.ledger.status(&id, |s| {
                        s.state = State::Active;
                        s.failing_since_ms = None;
                        s.delivered_events += n;
                        s.delivered_batches += 1;
                        s.redelivered_events += redelivered;
                    });
                    self.backoff.reset();
                    return Ok(());
                }
                Err(failure) => {
                    attempts += 1;
                    ::metrics::counter!(crate::metrics::DELIVERIES, "kind" => kind, "outcome" => "failed")
                        .increment(1);
                    ::metrics::counter!(crate::metrics::FAILURES, "kind" => kind).increment(1);
                    let mut failing_since = now;
                    self.shared.ledger.status(&id, |s| {
                        s.state = State::Failing;
                        s.last_error = failure.reason.clone();
                        s.last_error_at_ms = Some(now);
                        s.failed_attempts += 1;
                        failing_since = *s.failing_since_ms.get_or_insert(now);
                    });
                    let pause_at = failing_since
                        .saturating_add(self.shared.cfg.auto_pause_after.as_millis() as i64);
                    if now >= pause_at && self.auto_pause(&failure.reason).await {
                        return Err(Ended::AutoPaused);
                    }
                    let wait = self.backoff.next(failure.retry_after);
                    warn!(stream_id = %id, batch_id = %cut.batch.batch_id, error = %failure.reason,
                        wait_ms = wait.as_millis() as u64, "delivery failed; retrying");
                    // Between attempts the batch waits outside the in-flight cap.
                    *permit = None;
                    let until_pause = Duration::from_millis((pause_at - now).max(0) as u64);
                    let wait = wait.min(until_pause.max(Duration::from_millis(10)));
                    if !self.sleep(wait).await {
                        return Err(Ended::Stopped);
                    }
                }
            }
        }
    }

    /// Pauses the stream (desired = paused, with the reason); `false` when the store refused
    /// (tried again after the next failure).
    async fn auto_pause(&self, last_error: &str) -> bool {
        let hours = self.shared.cfg.auto_pause_after;
        let reason = format!(
            "paused automatically after failing for {} without a success; last error: {last_error}",
            auditlog_settings::duration::format(hours)
        );
        match self
            .shared
            .store
            .set_desired(&self.stream.stream_id, Desired::Paused, &reason)
            .await
        {
            Ok(_) => {
                info!(stream_id = %self.stream.stream_id, %reason, "stream paused");
                self.shared
                    .ledger
                    .status(&self.stream.stream_id, |s| s.state = State::Paused);
                true
            }
            Err(e) => {
                warn!(stream_id = %self.stream.stream_id, error = %e, "auto-pause failed");
                false
            }
        }
    }
}
