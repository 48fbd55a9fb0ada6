//! Observability: metric names, their buckets and descriptions, `/metrics` and the health
//! endpoints. The Prometheus recorder is the binary's (`auditlog consume` installs it).
//!
//! - `GET /health/live`: 200 while the consume, pipeline and write loops run; 503 when one of
//!   them stopped or has been stuck (no progress and not waiting on the next step) for
//!   [`STUCK_AFTER`]. A restart is the cure.
//! - `GET /health/ready`: 200 only when every dependency check passes (broker reachable,
//!   topic present, group joined, partitions assigned, ClickHouse writable), else 503; the body
//!   lists every check with `ok` and a `reason`.
//! - `GET /health`: the same detailed readiness answer (`status` `ok`, `degraded`,
//!   `starting` or `stopping`, plus `batches` written).
//!
//! The broker, topic and ClickHouse checks are real round trips made by one background task
//! every [`PROBE_EVERY`] with short deadlines; the endpoints answer from its last result, so
//! scrapes never load the broker or ClickHouse. Group membership and the assignment come from
//! the rebalance callbacks (and librdkafka's group state in its statistics).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::consumer::Consumer as _;
use serde::Serialize;
use tokio::sync::watch;

use crate::consume::SinkConsumer;
use crate::{Error, Result};

/// Counter: messages read from the topic.
pub const CONSUMED: &str = "auditlog_sink_messages_consumed_total";
/// Counter: rows inserted into ClickHouse (before ClickHouse's own deduplication).
pub const INSERTED: &str = "auditlog_sink_rows_inserted_total";
/// Counter, label `reason`: messages sent to the dead-letter topic.
pub const DEAD_LETTERED: &str = "auditlog_sink_dead_lettered_total";
/// Counter: failed ClickHouse writes that were retried.
pub const RETRIES: &str = "auditlog_sink_write_retries_total";
/// Counter: batches written.
pub const BATCHES: &str = "auditlog_sink_batches_total";
/// Histogram: rows per batch.
pub const BATCH_ROWS: &str = "auditlog_sink_batch_rows";
/// Histogram: message bytes per batch.
pub const BATCH_BYTES: &str = "auditlog_sink_batch_bytes";
/// Histogram: seconds to write a batch (insert, retries included, and commit).
pub const BATCH_SECONDS: &str = "auditlog_sink_batch_duration_seconds";
/// Gauge, labels `topic`, `partition`: messages behind the end of the partition (librdkafka
/// statistics, every 5 s).
pub const LAG: &str = "auditlog_sink_partition_lag";
/// Gauge: 1 while consumption is paused because ClickHouse writes fail.
pub const PAUSED: &str = "auditlog_sink_paused";
/// Counter, label `kind` (`assign`, `revoke`): rebalances.
pub const REBALANCES: &str = "auditlog_sink_rebalances_total";
/// Counter: offset commits that failed (the range is consumed again; deduplication drops it).
pub const COMMIT_ERRORS: &str = "auditlog_sink_commit_errors_total";
/// Gauge: 1 when every readiness check passes (what `/health/ready` answers).
pub const READY: &str = "auditlog_sink_ready";

/// Every metric the consumer exports (process metrics aside), for docs and drift tests.
pub const ALL: &[&str] = &[
    CONSUMED,
    INSERTED,
    DEAD_LETTERED,
    RETRIES,
    BATCHES,
    BATCH_ROWS,
    BATCH_BYTES,
    BATCH_SECONDS,
    LAG,
    PAUSED,
    REBALANCES,
    COMMIT_ERRORS,
    READY,
    crate::watchdog::REJOINS,
];

/// Dead-letter reason codes, registered at zero so a rate over them exists from the start.
const DEAD_LETTER_REASONS: &[&str] = &[
    "empty",
    "too_large",
    "invalid_utf8",
    "not_json",
    "unknown_field",
    "unknown_version",
    "invalid_field",
    "rejected_by_clickhouse",
];

/// How often the dependency checks run.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Deadline of each check's round trip.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(2);
/// A loop that neither progressed nor waited on the next step for this long is stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(120);

/// Histogram buckets of the consumer's histograms, for the recorder the binary installs.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    (
        BATCH_ROWS,
        &[1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 50_000.0],
    ),
    (BATCH_BYTES, &[1e3, 1e4, 1e5, 1e6, 4e6, 8e6, 16e6]),
    (
        BATCH_SECONDS,
        &[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ],
    ),
];

/// Describes every consumer metric to the installed recorder and creates its series at zero
/// (once per process; later calls do nothing). The recorder is the binary's: install it first.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        describe();
        register_zeros();
        auditlog_store::failover::register_metrics();
    });
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(CONSUMED, "Messages read from the topic");
    describe_counter!(
        INSERTED,
        "Rows inserted into ClickHouse (before ClickHouse's deduplication)"
    );
    describe_counter!(
        DEAD_LETTERED,
        "Messages sent to the dead-letter topic, by reason"
    );
    describe_counter!(RETRIES, "ClickHouse writes retried after a failure");
    describe_counter!(BATCHES, "Batches written");
    describe_histogram!(BATCH_ROWS, Unit::Count, "Rows per batch");
    describe_histogram!(BATCH_BYTES, Unit::Bytes, "Message bytes per batch");
    describe_histogram!(
        BATCH_SECONDS,
        Unit::Seconds,
        "Time to write and commit a batch, retries included"
    );
    describe_gauge!(
        LAG,
        "Messages behind the end of the partition, by topic and partition"
    );
    describe_gauge!(
        PAUSED,
        "1 while consumption is paused for ClickHouse retries"
    );
    describe_counter!(REBALANCES, "Partition assignments and revocations, by kind");
    describe_counter!(
        COMMIT_ERRORS,
        "Failed offset commits (the range is consumed again and deduplicated)"
    );
    describe_gauge!(
        READY,
        "1 when every readiness check passes (broker, topic, group, partitions, ClickHouse)"
    );
    describe_counter!(
        crate::watchdog::REJOINS,
        "Times the consumer left and rejoined its group because partitions were consumed by nobody"
    );
}

/// Creates every series that has a known set of labels, at zero, so dashboards and alerts see
/// them before the first event (a counter that does not exist yet has no rate).
fn register_zeros() {
    for name in [
        CONSUMED,
        INSERTED,
        RETRIES,
        BATCHES,
        COMMIT_ERRORS,
        crate::watchdog::REJOINS,
    ] {
        metrics::counter!(name).absolute(0);
    }
    for reason in DEAD_LETTER_REASONS {
        metrics::counter!(DEAD_LETTERED, "reason" => *reason).absolute(0);
    }
    for kind in ["assign", "revoke"] {
        metrics::counter!(REBALANCES, "kind" => kind).absolute(0);
    }
    for name in [BATCH_ROWS, BATCH_BYTES, BATCH_SECONDS] {
        let _ = metrics::histogram!(name);
    }
    metrics::gauge!(PAUSED).set(0.0);
    metrics::gauge!(READY).set(0.0);
}

/// Milliseconds since the first call (a process-wide monotonic clock for the heartbeats).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One loop's heartbeat: when it last progressed (or was seen waiting on the next step), and
/// whether it ended.
#[derive(Debug, Default)]
pub struct Beat {
    started: AtomicBool,
    last_ms: AtomicU64,
    ended: AtomicBool,
}

impl Beat {
    /// The loop is alive and not stuck now.
    pub fn beat(&self) {
        self.last_ms.store(now_ms(), Ordering::Relaxed);
        self.started.store(true, Ordering::Relaxed);
    }

    /// Marks the loop started; the guard marks it ended when dropped (also when the loop's
    /// task panics or is cancelled).
    pub fn enter(self: &Arc<Self>) -> BeatGuard {
        self.beat();
        BeatGuard(self.clone())
    }

    /// Milliseconds since the last beat, `None` before the loop started.
    fn silent_ms(&self, now: u64) -> Option<u64> {
        self.started
            .load(Ordering::Relaxed)
            .then(|| now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Marks its loop ended when dropped.
#[derive(Debug)]
pub struct BeatGuard(Arc<Beat>);

impl Drop for BeatGuard {
    fn drop(&mut self) {
        self.0.ended.store(true, Ordering::Relaxed);
    }
}

/// Awaits `fut`, beating `beat` every second meanwhile: for waits that are not the loop's own
/// fault (the next step is busy, no messages arrive).
pub async fn beating<F: std::future::Future>(beat: &Beat, fut: F) -> F::Output {
    tokio::pin!(fut);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            out = &mut fut => {
                beat.beat();
                return out;
            }
            _ = tick.tick() => beat.beat(),
        }
    }
}

/// Group membership as the rebalance callbacks report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Membership {
    /// Not subscribed yet (startup).
    #[default]
    NotSubscribed,
    /// Subscribed, waiting for the first assignment.
    Joining,
    /// Member of the group with these partitions of the topic (possibly none).
    Assigned(Vec<i32>),
    /// Partitions revoked, waiting for the next assignment.
    Rebalancing,
}

/// One readiness check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Whether it passes.
    pub ok: bool,
    /// Why (what was seen), in words.
    pub reason: String,
    /// Partitions check only: true for a member with no partitions (more members than
    /// partitions); healthy, standing by.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub idle: bool,
}

impl Check {
    fn ok(reason: impl Into<String>) -> Self {
        Self {
            ok: true,
            reason: reason.into(),
            idle: false,
        }
    }

    fn fail(reason: impl Into<String>) -> Self {
        Self {
            ok: false,
            reason: reason.into(),
            idle: false,
        }
    }
}

/// What the last dependency probe found.
#[derive(Debug, Clone)]
struct Probe {
    broker: Check,
    topic: Check,
    /// Partitions of the topic (0 when unknown).
    topic_partitions: usize,
    clickhouse: Check,
}

/// Shared state behind the health endpoints, updated by the loops, the rebalance callbacks and
/// the probe task.
#[derive(Debug, Default)]
pub struct Health {
    /// The pipeline is running (set after startup, cleared at shutdown).
    pub running: AtomicBool,
    /// The pipeline ran and stopped (shutdown).
    pub stopped: AtomicBool,
    /// The last ClickHouse write failed and is being retried.
    pub clickhouse_failing: AtomicBool,
    /// Batches written since start.
    pub batches: AtomicU64,
    /// The consume task (reads Kafka).
    pub consume: Arc<Beat>,
    /// The pipeline (decode, batch).
    pub pipeline: Arc<Beat>,
    /// The write stage (insert, commit).
    pub write: Arc<Beat>,
    group: Mutex<Membership>,
    /// librdkafka's group state from its statistics: (`state`, `join_state`).
    coordinator: Mutex<Option<(String, String)>>,
    last_write_error: Mutex<Option<String>>,
    probe: Mutex<Option<Probe>>,
    /// Group id, topic and brokers, for the reasons.
    names: OnceLock<(String, String, String)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Health {
    /// A health state for `group` consuming `topic` from `brokers`.
    pub fn new(group: &str, topic: &str, brokers: &str) -> Self {
        let h = Self::default();
        let _ = h
            .names
            .set((group.to_owned(), topic.to_owned(), brokers.to_owned()));
        h
    }

    fn names(&self) -> (&str, &str, &str) {
        self.names.get().map_or(("?", "?", "?"), |(g, t, b)| {
            (g.as_str(), t.as_str(), b.as_str())
        })
    }

    /// The consumer subscribed to the topic.
    pub fn subscribed(&self) {
        *lock(&self.group) = Membership::Joining;
    }

    /// The group assigned these partitions of the topic (possibly none).
    pub fn assigned(&self, partitions: Vec<i32>) {
        *lock(&self.group) = Membership::Assigned(partitions);
    }

    /// The group revoked the assignment (a rebalance started).
    pub fn revoked(&self) {
        *lock(&self.group) = Membership::Rebalancing;
    }

    /// librdkafka's view of the group (statistics `cgrp.state`, `cgrp.join_state`).
    pub fn coordinator(&self, state: &str, join_state: &str) {
        *lock(&self.coordinator) = Some((state.to_owned(), join_state.to_owned()));
    }

    /// A ClickHouse write failed (it is retried).
    pub fn write_failed(&self, error: &str) {
        *lock(&self.last_write_error) = Some(error.to_owned());
    }

    /// A retry loop is waiting for ClickHouse: the loops waiting on it are not stuck.
    pub fn retrying(&self) {
        self.pipeline.beat();
        self.write.beat();
    }

    fn set_probe(&self, probe: Probe) {
        *lock(&self.probe) = Some(probe);
    }

    /// The readiness report as of now.
    pub fn report(&self) -> Report {
        let probe = lock(&self.probe).clone();
        let (group_id, topic, _) = self.names();
        let unknown = || Check::fail("not checked yet (starting)");
        let (broker, topic_check, topic_partitions, mut clickhouse) = match probe {
            Some(p) => (p.broker, p.topic, p.topic_partitions, p.clickhouse),
            None => (unknown(), unknown(), 0, unknown()),
        };
        if clickhouse.ok && self.clickhouse_failing.load(Ordering::SeqCst) {
            let why = lock(&self.last_write_error)
                .clone()
                .unwrap_or_else(|| "unknown error".into());
            clickhouse = Check::fail(format!(
                "writes are failing and being retried (consumption paused): {why}"
            ));
        }
        let membership = lock(&self.group).clone();
        let coordinator = lock(&self.coordinator).clone();
        let group = match (&membership, &coordinator) {
            (Membership::Assigned(_), Some((state, join))) if state != "up" || join != "steady" => {
                Check::fail(format!(
                    "group {group_id:?}: the client's group state is {state}/{join} (joined is up/steady)"
                ))
            }
            (Membership::Assigned(_), _) => Check::ok(format!("member of group {group_id:?}")),
            (Membership::NotSubscribed, _) => Check::fail(format!(
                "not subscribed to {topic:?} yet: startup waits for ClickHouse (workspace plans)"
            )),
            (Membership::Joining, _) => Check::fail(format!(
                "joining group {group_id:?}: no assignment received yet"
            )),
            (Membership::Rebalancing, _) => Check::fail(format!(
                "group {group_id:?} is rebalancing: partitions revoked, waiting for the new assignment"
            )),
        };
        let partitions = match &membership {
            Membership::Assigned(p) if !p.is_empty() => {
                let mut p = p.clone();
                p.sort_unstable();
                Check::ok(format!("{} assigned: {p:?}", p.len()))
            }
            Membership::Assigned(_) => Check {
                ok: true,
                reason: format!(
                    "idle: none of the topic's {} partitions is assigned to this member (the \
                     group has more members than the topic has partitions); it takes partitions \
                     over when another member leaves",
                    if topic_partitions == 0 {
                        "?".to_owned()
                    } else {
                        topic_partitions.to_string()
                    }
                ),
                idle: true,
            },
            _ => Check::fail("no assignment (the group is not joined)"),
        };
        let checks = Checks {
            broker,
            topic: topic_check,
            group,
            partitions,
            clickhouse,
        };
        let all_ok = checks.all_ok();
        let running = self.running.load(Ordering::SeqCst);
        let status = if self.stopped.load(Ordering::SeqCst) {
            "stopping"
        } else if !running {
            "starting"
        } else if all_ok {
            "ok"
        } else {
            "degraded"
        };
        Report {
            status,
            ready: running && all_ok,
            checks,
            batches: self.batches.load(Ordering::Relaxed),
        }
    }

    /// The liveness answer as of now.
    pub fn liveness(&self) -> Liveness {
        self.liveness_at(
            now_ms(),
            u64::try_from(STUCK_AFTER.as_millis()).unwrap_or(u64::MAX),
        )
    }

    /// Liveness at `now` (ms on the heartbeat clock) with a stuck threshold of `stuck_ms`.
    /// The loops form a chain (consume -> pipeline -> write): a loop silent for `stuck_ms` is
    /// stuck unless the next one is silent too (it then waits on that one, which is judged
    /// itself).
    fn liveness_at(&self, now: u64, stuck_ms: u64) -> Liveness {
        let chain = [
            ("consume", &self.consume),
            ("pipeline", &self.pipeline),
            ("write", &self.write),
        ];
        let running = self.running.load(Ordering::SeqCst);
        let mut problems = Vec::new();
        for (i, (name, beat)) in chain.iter().enumerate() {
            if !running {
                break;
            }
            if beat.ended.load(Ordering::Relaxed) {
                problems.push(format!("the {name} loop has stopped"));
                continue;
            }
            let Some(silent) = beat.silent_ms(now) else {
                continue;
            };
            let next_silent = chain
                .get(i + 1)
                .and_then(|(_, b)| b.silent_ms(now))
                .is_some_and(|s| s >= stuck_ms);
            if silent >= stuck_ms && !next_silent {
                problems.push(format!(
                    "the {name} loop has made no progress for {}s",
                    silent / 1000
                ));
            }
        }
        Liveness {
            live: problems.is_empty(),
            status: if problems.is_empty() { "live" } else { "stuck" },
            problems,
        }
    }
}

/// The checks, in the order a reader follows them.
#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    /// A bootstrap broker answered a metadata request.
    pub broker: Check,
    /// The topic exists (with partitions).
    pub topic: Check,
    /// This process is a member of the consumer group.
    pub group: Check,
    /// The partitions assigned to it (none is healthy: `idle`).
    pub partitions: Check,
    /// ClickHouse answers, the user may write, the tables exist, and writes are not failing.
    pub clickhouse: Check,
}

impl Checks {
    fn all_ok(&self) -> bool {
        [
            &self.broker,
            &self.topic,
            &self.group,
            &self.partitions,
            &self.clickhouse,
        ]
        .iter()
        .all(|c| c.ok)
    }
}

/// What `/health` and `/health/ready` answer.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `ok`, `degraded` (running, a check fails), `starting` or `stopping`.
    pub status: &'static str,
    /// Running and every check passes.
    pub ready: bool,
    /// Each dependency check.
    pub checks: Checks,
    /// Batches written since start.
    pub batches: u64,
}

/// What `/health/live` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Liveness {
    /// `live` or `stuck`.
    pub status: &'static str,
    /// Whether the loops run.
    pub live: bool,
    /// What is wrong (empty when live).
    pub problems: Vec<String>,
}

/// Runs the dependency checks every [`PROBE_EVERY`] until `stop`.
pub async fn probe(
    health: Arc<Health>,
    consumer: Arc<SinkConsumer>,
    clickhouse: clickhouse::Client,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (_, topic, brokers) = health.names();
        let (topic, brokers) = (topic.to_owned(), brokers.to_owned());
        let kafka = {
            let (c, t, b) = (consumer.clone(), topic.clone(), brokers.clone());
            tokio::task::spawn_blocking(move || probe_kafka(&c, &t, &b))
        };
        let ch = probe_clickhouse(&clickhouse).await;
        let Ok((broker, topic_check, topic_partitions)) = kafka.await else {
            return;
        };
        health.set_probe(Probe {
            broker,
            topic: topic_check,
            topic_partitions,
            clickhouse: ch,
        });
        let ready = health.report().ready;
        metrics::gauge!(READY).set(if ready { 1.0 } else { 0.0 });
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(PROBE_EVERY) => {}
        }
    }
}

/// Broker and topic: one metadata request with a short deadline.
fn probe_kafka(c: &SinkConsumer, topic: &str, brokers: &str) -> (Check, Check, usize) {
    match c.fetch_metadata(Some(topic), PROBE_DEADLINE) {
        Err(e) => (
            Check::fail(format!(
                "no broker of {brokers} (kafka.brokers) answered within {PROBE_DEADLINE:?}: {e}"
            )),
            Check::fail("unknown: no broker answered"),
            0,
        ),
        Ok(md) => {
            let broker = Check::ok(format!(
                "{brokers} answered; {} broker(s) in the cluster",
                md.brokers().len()
            ));
            let found = md.topics().iter().find(|t| t.name() == topic);
            let topic_check = match found {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => Check::ok(format!(
                    "{topic:?} has {} partition(s)",
                    t.partitions().len()
                )),
                Some(t) => Check::fail(format!(
                    "topic {topic:?} (kafka.topic) does not exist on {brokers}{}",
                    t.error()
                        .map(|e| format!(" ({:?})", rdkafka::types::RDKafkaErrorCode::from(e)))
                        .unwrap_or_default()
                )),
                None => Check::fail(format!(
                    "topic {topic:?} (kafka.topic) does not exist on {brokers}"
                )),
            };
            let n = found.map_or(0, |t| t.partitions().len());
            (broker, topic_check, n)
        }
    }
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct Writable {
    readonly: u64,
    tables: u64,
}

/// ClickHouse: answers within the deadline, the user may write, the consumer's tables exist.
async fn probe_clickhouse(client: &clickhouse::Client) -> Check {
    let q = client.query(
        "SELECT toUInt64(getSetting('readonly')) AS readonly, \
         toUInt64(ifNull((SELECT count() FROM system.tables \
                   WHERE database = currentDatabase() AND name IN ('events', 'sink_batches')), 0)) AS tables",
    );
    match tokio::time::timeout(PROBE_DEADLINE, q.fetch_one::<Writable>()).await {
        Err(_) => Check::fail(format!("no answer within {PROBE_DEADLINE:?} (clickhouse.url)")),
        Ok(Err(e)) => Check::fail(format!("unreachable or failing (clickhouse.url): {e}")),
        Ok(Ok(w)) if w.readonly != 0 => Check::fail(format!(
            "the user is read-only (readonly = {}): inserts would fail (clickhouse.user)",
            w.readonly
        )),
        Ok(Ok(w)) if w.tables < 2 => Check::fail(
            "the events and sink_batches tables are missing (clickhouse.database): run `auditlog migrate`",
        ),
        Ok(Ok(_)) => Check::ok("answers, writable, tables present"),
    }
}

async fn health(State(h): State<Arc<Health>>) -> impl IntoResponse {
    let report = h.report();
    metrics::gauge!(READY).set(if report.ready { 1.0 } else { 0.0 });
    let code = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report))
}

async fn live(State(h): State<Arc<Health>>) -> impl IntoResponse {
    let l = h.liveness();
    let code = if l.live {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(l))
}

/// Binds `listen` and serves `/metrics` (rendered by `prom`), `/health`, `/health/ready` and
/// `/health/live` until `stop` turns true.
pub async fn serve(
    listen: &str,
    health_state: Arc<Health>,
    prom: PrometheusHandle,
    stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        auditlog_settings::BadSetting::new(
            "consumer.metrics_listen",
            format!("{listen:?} is not HOST:PORT"),
        )
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen {
            addr: listen.to_owned(),
            source,
        })?;
    let app = Router::new()
        .route("/health", get(health))
        .route("/health/ready", get(health))
        .route("/health/live", get(live))
        .with_state(health_state);
    Ok(auditlog_settings::endpoint::serve(
        listener, app, prom, stop,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_ok() -> Probe {
        Probe {
            broker: Check::ok("b"),
            topic: Check::ok("t"),
            topic_partitions: 3,
            clickhouse: Check::ok("c"),
        }
    }

    fn running() -> Health {
        let h = Health::new("g", "t", "b:9092");
        h.running.store(true, Ordering::SeqCst);
        h.set_probe(probe_ok());
        h
    }

    #[test]
    fn ready_only_when_running_assigned_and_every_dependency_passes() {
        let h = Health::new("g", "t", "b:9092");
        h.set_probe(probe_ok());
        h.assigned(vec![1, 0]);
        assert!(!h.report().ready, "not running yet");
        assert_eq!(h.report().status, "starting");
        h.running.store(true, Ordering::SeqCst);
        let r = h.report();
        assert!(r.ready && r.status == "ok", "{r:?}");
        assert_eq!(r.checks.partitions.reason, "2 assigned: [0, 1]");
        h.clickhouse_failing.store(true, Ordering::SeqCst);
        h.write_failed("Connection refused");
        let r = h.report();
        assert!(!r.ready && r.status == "degraded");
        assert!(!r.checks.clickhouse.ok);
        assert!(r.checks.clickhouse.reason.contains("Connection refused"));
    }

    #[test]
    fn an_idle_member_is_ready_and_says_so() {
        let h = running();
        h.assigned(Vec::new());
        let r = h.report();
        assert!(r.ready, "{r:?}");
        assert!(r.checks.partitions.idle);
        assert!(r.checks.partitions.reason.contains("idle"), "{r:?}");
        assert!(r.checks.partitions.reason.contains("3 partitions"), "{r:?}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["checks"]["partitions"]["idle"], true);
        assert!(json["checks"]["group"].get("idle").is_none());
    }

    #[test]
    fn group_states_that_are_not_membership_fail_the_group_check() {
        let h = running();
        assert!(!h.report().checks.group.ok, "not subscribed");
        h.subscribed();
        assert!(h.report().checks.group.reason.contains("joining"));
        h.assigned(vec![0]);
        assert!(h.report().checks.group.ok);
        h.coordinator("wait-coord", "init");
        let r = h.report();
        assert!(
            !r.checks.group.ok && r.checks.group.reason.contains("wait-coord"),
            "{r:?}"
        );
        h.coordinator("up", "steady");
        assert!(h.report().ready);
        h.revoked();
        let r = h.report();
        assert!(!r.ready && r.checks.group.reason.contains("rebalancing"));
        assert!(!r.checks.partitions.ok);
    }

    #[test]
    fn a_failed_probe_names_its_dependency() {
        let h = running();
        h.assigned(vec![0]);
        h.set_probe(Probe {
            topic: Check::fail("topic \"x\" does not exist"),
            ..probe_ok()
        });
        let json = serde_json::to_value(h.report()).unwrap();
        assert_eq!(json["ready"], false);
        assert_eq!(json["checks"]["topic"]["ok"], false);
        assert_eq!(json["checks"]["broker"]["ok"], true);
    }

    #[test]
    fn a_silent_loop_is_stuck_unless_it_waits_on_a_silent_next_one() {
        let h = running();
        let stuck = 1000;
        for b in [&h.consume, &h.pipeline, &h.write] {
            b.beat();
        }
        let t = now_ms();
        assert!(h.liveness_at(t + 10, stuck).live);
        // Everything silent: only the last loop (write) is to blame.
        let l = h.liveness_at(t + 5000, stuck);
        assert_eq!(
            l.problems,
            vec!["the write loop has made no progress for 5s"]
        );
        // The write stage beats (waiting for work) while the pipeline is silent: the
        // pipeline is stuck; the consume task waits on it.
        h.write.last_ms.store(t + 4990, Ordering::Relaxed);
        let l = h.liveness_at(t + 5000, stuck);
        assert_eq!(
            l.problems,
            vec!["the pipeline loop has made no progress for 5s"]
        );
        // A loop that ended is dead whatever its heartbeat says.
        let guard = h.consume.enter();
        drop(guard);
        let l = h.liveness_at(now_ms(), stuck);
        assert!(
            !l.live && l.problems[0].contains("consume loop has stopped"),
            "{l:?}"
        );
    }

    #[test]
    fn not_running_is_live() {
        let h = Health::new("g", "t", "b");
        let guard = h.consume.enter();
        drop(guard);
        assert!(h.liveness().live, "startup and shutdown are not stuck");
    }

    #[tokio::test]
    async fn every_metric_has_help_and_exists_at_zero() {
        let handle = auditlog_testkit::prometheus(HISTOGRAM_BUCKETS);
        register();
        let text = handle.render();
        for name in ALL.iter().filter(|n| **n != LAG) {
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}:\n{text}"
            );
            assert!(
                text.lines()
                    .any(|l| l.starts_with(name) && !l.starts_with('#')),
                "no series for {name}:\n{text}"
            );
        }
        assert!(text.contains("auditlog_sink_dead_lettered_total{reason=\"not_json\"} 0"));
    }
}
