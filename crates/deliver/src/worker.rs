//! The supervisor: heartbeats, and every `streams.refresh` re-reads the active streams, their
//! cursors and the live workers, then starts, stops or restarts per-stream tasks: a stream it
//! gained (after the takeover grace), lost, that was paused or deleted, whose configuration
//! changed, or that was replayed (a newer cursor generation). On shutdown it lets deliveries
//! in flight finish (at most `streams.shutdown_timeout`) and saves the last cursors and
//! statuses.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_query::feed::Notifier;
use auditlog_query::Reader;
use auditlog_streams::store::StreamStore;
use auditlog_streams::{CursorRecord, State, Stream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::StreamsConfig;
use crate::flush::{self, Ledger};
use crate::membership::Ownership;
use crate::stream::{self, Ended};

/// What every stream task shares.
pub struct Shared {
    /// Settings.
    pub cfg: StreamsConfig,
    /// This worker's id.
    pub worker_id: String,
    /// Feed reads.
    pub reader: Reader,
    /// Streams, cursors, statuses.
    pub store: StreamStore,
    /// Wakes caught-up streams when their workspace changed.
    pub notifier: Arc<Notifier>,
    /// The destinations' HTTP client.
    pub http: reqwest::Client,
    /// Bounds concurrent feed queries.
    pub feed_queries: Arc<Semaphore>,
    /// Bounds in-flight batch bytes (KiB permits).
    pub inflight: Arc<Semaphore>,
    /// Total KiB permits of `inflight`.
    pub inflight_units: u32,
    /// Cursors and figures for the flusher.
    pub ledger: Arc<Ledger>,
}

impl Shared {
    /// The shared state of a worker.
    pub fn new(
        cfg: StreamsConfig,
        worker_id: String,
        reader: Reader,
        store: StreamStore,
        notifier: Arc<Notifier>,
    ) -> Self {
        let units = (cfg.max_inflight_bytes / 1024).min(u32::MAX as usize >> 4) as u32;
        Self {
            http: crate::http::client(cfg.request_timeout),
            feed_queries: Arc::new(Semaphore::new(cfg.max_feed_queries)),
            inflight: Arc::new(Semaphore::new(units as usize)),
            inflight_units: units,
            ledger: Arc::new(Ledger::default()),
            cfg,
            worker_id,
            reader,
            store,
            notifier,
        }
    }
}

/// Liveness of the worker, for `/health`.
#[derive(Debug, Default)]
pub struct Health {
    /// Epoch ms of the last successful heartbeat (0: none yet).
    pub heartbeat_ms: AtomicI64,
    /// Streams owned.
    pub owned: AtomicI64,
    /// Streams being delivered.
    pub running: AtomicI64,
    /// Shutting down.
    pub stopping: AtomicBool,
}

struct Running {
    stream: Stream,
    generation: u64,
    stop: watch::Sender<bool>,
    handle: JoinHandle<Ended>,
    /// How the task ended, once it did.
    ended: Option<Ended>,
}

/// A worker id for this process: `<host>-<8 random hex>`.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".into());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &id[..8])
}

/// Runs the worker until `shutdown` completes.
pub async fn run(shared: Arc<Shared>, health: Arc<Health>, shutdown: impl Future<Output = ()>) {
    let cfg = shared.cfg.clone();
    let (stop_tx, stop_rx) = watch::channel(false);
    let beat = tokio::spawn(heartbeat(shared.clone(), health.clone(), stop_rx.clone()));
    let flusher = tokio::spawn(flush::run(
        shared.ledger.clone(),
        shared.store.clone(),
        shared.reader.clone(),
        shared.feed_queries.clone(),
        cfg.cursor_flush,
        cfg.status_flush,
        stop_rx.clone(),
    ));
    let mut sup = Supervisor {
        shared: shared.clone(),
        health: health.clone(),
        ownership: Ownership::new(&shared.worker_id, cfg.takeover_grace()),
        tasks: HashMap::new(),
    };
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(cfg.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => {
                if let Err(e) = sup.refresh().await {
                    warn!(error = %e, "refreshing streams failed; keeping the current ones");
                }
            }
        }
    }
    health.stopping.store(true, Ordering::SeqCst);
    info!(
        streams = sup.tasks.len(),
        "stopping: finishing deliveries in flight"
    );
    sup.stop_all(cfg.shutdown_timeout).await;
    let _ = stop_tx.send(true);
    let _ = flusher.await;
    let _ = beat.await;
    flush::flush_cursors(&shared.ledger, &shared.store).await;
    flush::flush_statuses(
        &shared.ledger,
        &shared.store,
        &shared.reader,
        &shared.feed_queries,
    )
    .await;
    info!("stopped; cursors and statuses saved");
}

async fn heartbeat(shared: Arc<Shared>, health: Arc<Health>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.cfg.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = crate::worker::until_stopped(&mut stop) => return,
        }
        let sent = chrono::Utc::now().timestamp_millis();
        match tokio::time::timeout(
            shared.cfg.heartbeat.max(Duration::from_secs(1)),
            shared.store.heartbeat(&shared.worker_id),
        )
        .await
        {
            Ok(Ok(())) => health.heartbeat_ms.store(sent, Ordering::SeqCst),
            Ok(Err(e)) => warn!(error = %e, "heartbeat failed"),
            Err(_) => warn!("heartbeat timed out"),
        }
    }
}

struct Supervisor {
    shared: Arc<Shared>,
    health: Arc<Health>,
    ownership: Ownership,
    tasks: HashMap<String, Running>,
}

impl Supervisor {
    fn self_ok(&self) -> bool {
        let last = self.health.heartbeat_ms.load(Ordering::SeqCst);
        let now = chrono::Utc::now().timestamp_millis();
        last > 0 && now - last < self.shared.cfg.worker_expiry.as_millis() as i64
    }

    async fn refresh(&mut self) -> Result<(), String> {
        let shared = self.shared.clone();
        let cfg = &shared.cfg;
        let store = &shared.store;
        let streams = store.all_active().await.map_err(|e| e.to_string())?;
        let live = store
            .live_workers(cfg.worker_expiry)
            .await
            .map_err(|e| e.to_string())?;
        let recent = store
            .live_workers(cfg.worker_expiry + cfg.takeover_grace())
            .await
            .map_err(|e| e.to_string())?;
        let me = &self.shared.worker_id;
        let alone = recent.iter().all(|w| w == me);
        let self_ok = self.self_ok();
        if !self_ok {
            warn!("no recent heartbeat of this worker: delivering nothing until one succeeds");
        }
        let ids: Vec<String> = streams.iter().map(|s| s.stream_id.clone()).collect();
        let by_id: HashMap<&str, &Stream> =
            streams.iter().map(|s| (s.stream_id.as_str(), s)).collect();
        let change = self
            .ownership
            .update(Instant::now(), &live, &ids, self_ok, alone);
        for id in &change.stop {
            let state = (!by_id.contains_key(id.as_str())).then_some(State::Paused);
            self.stop(id, state);
        }
        // Running tasks: replayed, reconfigured or ended (auto-paused, panicked) ones restart.
        let running: Vec<String> = self.ownership.running().cloned().collect();
        let cursors = if running.is_empty() {
            Vec::new()
        } else {
            store.cursors(&running).await.map_err(|e| e.to_string())?
        };
        let cursors: HashMap<String, CursorRecord> = cursors
            .into_iter()
            .map(|c| (c.stream_id.clone(), c))
            .collect();
        let mut to_start = Vec::new();
        for id in running {
            let Some(stream) = by_id.get(id.as_str()) else {
                continue;
            };
            let Some(cursor) = cursors.get(&id) else {
                warn!(stream_id = %id, "stream has no cursor record; not delivering it");
                continue;
            };
            let restart = match self.tasks.get_mut(&id) {
                None => true,
                Some(t) => {
                    if t.handle.is_finished() && t.ended.is_none() {
                        t.ended = Some(
                            futures::FutureExt::now_or_never(&mut t.handle)
                                .and_then(Result::ok)
                                .unwrap_or(Ended::Stopped),
                        );
                    }
                    // An auto-paused task stays down until the stream changes (a resume
                    // read before the pause was written must not start it again).
                    let ended = match t.ended {
                        Some(Ended::AutoPaused) => stream.updated_at_ms > t.stream.updated_at_ms,
                        Some(Ended::Stopped) => true,
                        None => false,
                    };
                    ended
                        || cursor.generation > t.generation
                        || t.stream.spec != stream.spec
                        || t.stream.secrets != stream.secrets
                }
            };
            if restart {
                to_start.push(((*stream).clone(), cursor.clone()));
            }
        }
        if !to_start.is_empty() {
            let ids: Vec<String> = to_start.iter().map(|(s, _)| s.stream_id.clone()).collect();
            let stored = store.statuses(&ids).await.map_err(|e| e.to_string())?;
            let mut stored: HashMap<String, _> = stored
                .into_iter()
                .map(|s| (s.stream_id.clone(), s))
                .collect();
            for (stream, cursor) in to_start {
                let status = stored.remove(&stream.stream_id);
                self.start(stream, cursor, status);
            }
        }
        self.health
            .owned
            .store(self.ownership.owned() as i64, Ordering::SeqCst);
        self.health
            .running
            .store(self.tasks.len() as i64, Ordering::SeqCst);
        ::metrics::gauge!(crate::metrics::OWNED).set(self.ownership.owned() as f64);
        Ok(())
    }

    fn stop(&mut self, id: &str, state: Option<State>) {
        if let Some(t) = self.tasks.remove(id) {
            info!(stream_id = %id, "stopping stream");
            let _ = t.stop.send(true);
            // The task finishes its request in flight (bounded by request_timeout) on its own.
            self.shared.ledger.stop(id, state);
        }
    }

    /// Starts (or restarts, after the old task ends) the task of `stream` from `cursor`.
    fn start(
        &mut self,
        stream: Stream,
        cursor: CursorRecord,
        stored: Option<auditlog_streams::StreamStatus>,
    ) {
        let id = stream.stream_id.clone();
        let previous = self.tasks.remove(&id);
        let status = match (&previous, self.shared.ledger.get(&id)) {
            (Some(_), Some(current)) => current,
            _ => stream::initial_status(&id, &self.shared.worker_id, stored),
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = self.shared.clone();
        let generation = cursor.generation;
        info!(stream_id = %id, generation, "starting stream");
        let task_stream = stream.clone();
        let handle = tokio::spawn(async move {
            if let Some(p) = previous {
                let _ = p.stop.send(true);
                if p.ended.is_none() {
                    let _ = p.handle.await;
                }
            }
            // The previous task's last acks (older generation) are fenced from here on.
            shared.ledger.start(
                generation,
                stream::initial_status(&task_stream.stream_id, &shared.worker_id, Some(status)),
            );
            stream::run(shared, task_stream, cursor, stop_rx).await
        });
        self.tasks.insert(
            id,
            Running {
                stream,
                generation,
                stop: stop_tx,
                handle,
                ended: None,
            },
        );
    }

    async fn stop_all(&mut self, timeout: Duration) {
        for t in self.tasks.values() {
            let _ = t.stop.send(true);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        for (id, t) in self.tasks.drain() {
            if t.ended.is_some() {
                continue;
            }
            let mut handle = t.handle;
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                warn!(stream_id = %id, "delivery still in flight at the shutdown deadline; cut");
                handle.abort();
            }
        }
    }
}

/// Completes once `stop` is true (or its sender is gone).
pub async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
