//! Steady load: several producer processes, each with its own producer client and its own
//! seeded synthetic event stream, emitting at a fixed total rate. Every acknowledged event is recorded
//! in the [`Ledger`] with its content fingerprint and delivery position: the ground truth the
//! accounting compares ClickHouse with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::process::Stdio;

use anyhow::{Context as _, Result};
use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_event::AuditEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
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

/// Workspace ids producer `task` writes to (for API tokens).
pub fn workspaces_of(spec: &LoadSpec, task: usize) -> Vec<String> {
    Synth::new(synth_config(spec.seed, spec.workspaces_per_producer, task))
        .workspace_ids()
        .map(str::to_owned)
        .collect()
}

/// The synthetic event stream of producer `task` of a load seeded with `seed`, writing to
/// `workspaces` workspaces.
fn synth_config(seed: u64, workspaces: usize, task: usize) -> SynthConfig {
    SynthConfig {
        seed: seed.wrapping_mul(1000).wrapping_add(task as u64),
        workspaces,
        ..SynthConfig::default()
    }
}

/// The current time at millisecond precision (what the wire format keeps).
pub fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_else(Utc::now)
}

/// A running load: one producer **process** per producer (this binary in `produce` mode, see
/// [`child_main`]), each reporting every emit's outcome as a JSON line on its stdout;
/// [`Load::stop`] ends it and returns the ledger.
#[derive(Debug)]
pub struct Load {
    children: Vec<tokio::process::Child>,
    readers: JoinSet<Result<()>>,
    pub ledger: Arc<Mutex<Ledger>>,
}

/// One emit's outcome, as a producer process reports it.
#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    id: Uuid,
    workspace_id: String,
    time_ms: i64,
    fingerprint: String,
    /// `(partition, offset)` when acknowledged.
    acked: Option<(i32, i64)>,
    error: Option<String>,
}

impl Load {
    /// Starts `spec.producers` producer processes writing to `topic` on `brokers`.
    pub fn start(spec: &LoadSpec, brokers: &str, topic: &str) -> Result<Self> {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let exe = std::env::current_exe().context("path of this binary")?;
        let per_task = f64::from(spec.rate.max(1)) / spec.producers.max(1) as f64;
        let mut children = Vec::new();
        let mut readers = JoinSet::new();
        for task in 0..spec.producers {
            let mut child = tokio::process::Command::new(&exe)
                .args(["produce", "--brokers", brokers, "--topic", topic])
                .args([
                    "--seed",
                    &spec.seed.to_string(),
                    "--task",
                    &task.to_string(),
                ])
                .args(["--workspaces", &spec.workspaces_per_producer.to_string()])
                .args(["--rate", &per_task.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("start a producer process")?;
            let stdout = child.stdout.take().context("producer stdout")?;
            readers.spawn(read_outcomes(stdout, ledger.clone()));
            children.push(child);
        }
        Ok(Self {
            children,
            readers,
            ledger,
        })
    }

    /// SIGTERMs the producer processes (they stop emitting, wait for every in-flight emit to
    /// resolve and report it), reads their last reports, and returns the ledger.
    pub async fn stop(mut self) -> Result<Ledger> {
        for child in &self.children {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        while let Some(r) = self.readers.join_next().await {
            r??;
        }
        for child in &mut self.children {
            let status = child.wait().await?;
            anyhow::ensure!(status.success(), "a producer process ended with {status}");
        }
        let mut guard = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        Ok(std::mem::take(&mut *guard))
    }
}

async fn read_outcomes(
    stdout: tokio::process::ChildStdout,
    ledger: Arc<Mutex<Ledger>>,
) -> Result<()> {
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        let o: Outcome = serde_json::from_str(&line)
            .with_context(|| format!("producer process wrote {line:?}"))?;
        let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
        l.produced += 1;
        match (o.acked, o.error) {
            (Some((partition, offset)), _) => {
                l.acked.insert(
                    o.id,
                    Acked {
                        fingerprint: Fingerprint::from_hex(&o.fingerprint)?,
                        workspace_id: o.workspace_id,
                        time_ms: o.time_ms,
                        partition,
                        offset,
                    },
                );
            }
            (None, error) => {
                l.failed.insert(o.id, error.unwrap_or_default());
            }
        }
    }
    Ok(())
}

/// Arguments of `auditlog-faults produce` (a producer process started by [`Load::start`]).
#[derive(Debug, clap::Parser)]
#[command(name = "auditlog-faults produce")]
pub struct ProduceArgs {
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    seed: u64,
    #[arg(long)]
    task: usize,
    #[arg(long)]
    workspaces: usize,
    /// Events per second.
    #[arg(long)]
    rate: f64,
}

/// A producer process: emits seeded synthetic events at `rate` until SIGTERM, then waits for
/// every in-flight emit; one JSON line per emit on stdout.
pub async fn child_main(args: ProduceArgs) -> Result<()> {
    let synth = Synth::new(synth_config(args.seed, args.workspaces, args.task));
    let emitter = Emitter::new(&args.brokers, &args.topic).await?;
    let stop = CancelFlag::default();
    let on_term = stop.clone();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        term.recv().await;
        on_term.cancel();
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(o) = rx.recv().await {
            let mut line = serde_json::to_vec(&o)?;
            line.push(b'\n');
            out.write_all(&line).await?;
        }
        out.flush().await?;
        anyhow::Ok(())
    });
    produce(synth, emitter, args.rate, stop, tx).await?;
    writer.await??;
    Ok(())
}

async fn produce(
    mut synth: Synth,
    emitter: Emitter,
    per_second: f64,
    stop: CancelFlag,
    report: tokio::sync::mpsc::UnboundedSender<Outcome>,
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
        let emitter = emitter.clone();
        let report = report.clone();
        pending.spawn(async move {
            let id = event.event_id;
            let fingerprint = Fingerprint::of_event(&event).to_hex();
            let workspace_id = event.workspace_id.clone();
            let time_ms = event.time.timestamp_millis();
            let result = emitter.emit(event).await;
            let (acked, error) = match result {
                Ok(position) => (Some(position), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            };
            let _ = report.send(Outcome {
                id,
                workspace_id,
                time_ms,
                fingerprint,
                acked,
                error,
            });
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
