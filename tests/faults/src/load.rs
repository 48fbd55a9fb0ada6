//! Steady load: several producer tasks, each with its own producer client and its own seeded
//! synthetic event stream, emitting at a fixed total rate. Every acknowledged event is recorded
//! in the [`Ledger`] with its content fingerprint and delivery position: the ground truth the
//! accounting compares ClickHouse with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_event::AuditEvent;
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::emit::Emitter;
use crate::flag::CancelFlag;
use crate::verify::Fingerprint;

/// What the producers know about one acknowledged event.
#[derive(Debug, Clone)]
pub struct Acked {
    pub fingerprint: Fingerprint,
    pub workspace_id: String,
    /// Emit time (the event's `time`), epoch ms.
    pub time_ms: i64,
    pub partition: i32,
    pub offset: i64,
}

/// Everything the producers did.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Emit attempts.
    pub produced: u64,
    /// Acknowledged by the broker, by event id.
    pub acked: HashMap<Uuid, Acked>,
    /// Emits that returned an error (not acknowledged: may or may not be stored).
    pub failed: HashMap<Uuid, String>,
}

/// Load settings.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub seed: u64,
    pub producers: usize,
    pub workspaces_per_producer: usize,
    /// Total events per second over all producers.
    pub rate: u32,
}

/// A running load; [`Load::stop`] ends it and returns the ledger.
#[derive(Debug)]
pub struct Load {
    stop: CancelFlag,
    tasks: JoinSet<Result<()>>,
    pub ledger: Arc<Mutex<Ledger>>,
}

/// Workspace ids producer task 0 writes to (for API tokens).
pub fn workspaces_of(spec: &LoadSpec, task: usize) -> Vec<String> {
    Synth::new(synth_config(spec, task))
        .workspace_ids()
        .map(str::to_owned)
        .collect()
}

fn synth_config(spec: &LoadSpec, task: usize) -> SynthConfig {
    SynthConfig {
        seed: spec.seed.wrapping_mul(1000).wrapping_add(task as u64),
        workspaces: spec.workspaces_per_producer,
        ..SynthConfig::default()
    }
}

/// The current time at millisecond precision (what the wire format keeps).
pub fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_else(Utc::now)
}

impl Load {
    /// Starts `spec.producers` tasks against `emitters` (one per task).
    pub fn start(spec: &LoadSpec, emitters: Vec<Emitter>) -> Self {
        let stop = CancelFlag::default();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let mut tasks = JoinSet::new();
        let per_task = f64::from(spec.rate.max(1)) / emitters.len().max(1) as f64;
        for (i, emitter) in emitters.into_iter().enumerate() {
            let synth = Synth::new(synth_config(spec, i));
            tasks.spawn(produce(
                synth,
                emitter,
                per_task,
                stop.clone(),
                ledger.clone(),
            ));
        }
        Self {
            stop,
            tasks,
            ledger,
        }
    }

    /// Stops emitting, waits for every in-flight emit to resolve.
    pub async fn stop(mut self) -> Result<Ledger> {
        self.stop.cancel();
        while let Some(r) = self.tasks.join_next().await {
            r??;
        }
        let mut guard = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        Ok(std::mem::take(&mut *guard))
    }
}

async fn produce(
    mut synth: Synth,
    emitter: Emitter,
    per_second: f64,
    stop: CancelFlag,
    ledger: Arc<Mutex<Ledger>>,
) -> Result<()> {
    let emitter = Arc::new(emitter);
    let in_flight = Arc::new(Semaphore::new(2_000));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending = JoinSet::new();
    while !stop.is_cancelled() {
        tick.tick().await;
        let permit = in_flight.clone().acquire_owned().await?;
        let mut event: AuditEvent = synth.next_event();
        event.time = now_ms();
        ledger
            .lock()
            .map_err(|_| anyhow::anyhow!("ledger poisoned"))?
            .produced += 1;
        let emitter = emitter.clone();
        let ledger = ledger.clone();
        pending.spawn(async move {
            let id = event.event_id;
            let fingerprint = Fingerprint::of_event(&event);
            let workspace_id = event.workspace_id.clone();
            let time_ms = event.time.timestamp_millis();
            let result = emitter.emit(event).await;
            let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok((partition, offset)) => {
                    l.acked.insert(
                        id,
                        Acked {
                            fingerprint,
                            workspace_id,
                            time_ms,
                            partition,
                            offset,
                        },
                    );
                }
                Err(e) => {
                    l.failed.insert(id, format!("{e:#}"));
                }
            }
            drop(permit);
        });
        while pending.try_join_next().is_some() {}
    }
    while pending.join_next().await.is_some() {}
    if let Ok(emitter) = Arc::try_unwrap(emitter) {
        emitter.close().await;
    }
    Ok(())
}
