//! Observability: metric names, the Prometheus recorder, `/metrics` and `/health`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

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
/// Gauge, label `partition`: messages behind the end of the partition (librdkafka statistics).
pub const LAG: &str = "auditlog_sink_partition_lag";
/// Gauge: 1 while consumption is paused because ClickHouse writes fail.
pub const PAUSED: &str = "auditlog_sink_paused";
/// Counter, label `kind` (`assign`, `revoke`): rebalances.
pub const REBALANCES: &str = "auditlog_sink_rebalances_total";
/// Counter: offset commits that failed (the range is consumed again; deduplication drops it).
pub const COMMIT_ERRORS: &str = "auditlog_sink_commit_errors_total";

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let rows = [1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 50_000.0];
            let bytes = [1e3, 1e4, 1e5, 1e6, 4e6, 8e6, 16e6];
            let secs = [
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(BATCH_ROWS.into()), &rows)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_BYTES.into()), &bytes))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_SECONDS.into()), &secs))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (embedding, tests): keep ours local then.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(CONSUMED, "Messages read from the topic");
    describe_counter!(INSERTED, "Rows inserted into ClickHouse");
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
        "Time to write and commit a batch"
    );
    describe_gauge!(LAG, "Messages behind the end of the partition");
    describe_gauge!(
        PAUSED,
        "1 while consumption is paused for ClickHouse retries"
    );
    describe_counter!(REBALANCES, "Partition assignments and revocations");
    describe_counter!(COMMIT_ERRORS, "Failed offset commits");
}

/// What `/health` reports.
#[derive(Debug, Default)]
pub struct Health {
    /// The pipeline is running (set after startup, cleared at shutdown).
    pub running: AtomicBool,
    /// The last ClickHouse write failed and is being retried.
    pub clickhouse_failing: AtomicBool,
    /// Batches written since start.
    pub batches: AtomicU64,
}

#[derive(serde::Serialize)]
struct HealthBody {
    status: &'static str,
    clickhouse: &'static str,
    batches: u64,
}

async fn health(State(h): State<Arc<Health>>) -> impl IntoResponse {
    let running = h.running.load(Ordering::Relaxed);
    let failing = h.clickhouse_failing.load(Ordering::Relaxed);
    let code = if running && !failing {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = HealthBody {
        status: match (running, failing) {
            (false, _) => "starting",
            (true, true) => "degraded",
            (true, false) => "ok",
        },
        clickhouse: if failing { "retrying" } else { "ok" },
        batches: h.batches.load(Ordering::Relaxed),
    };
    (code, Json(body))
}

/// Binds `listen` and serves `/metrics` and `/health` until `stop` turns true.
pub async fn serve(
    listen: &str,
    health_state: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let addr: SocketAddr = listen.parse().map_err(|_| Error::Config {
        field: "consumer.metrics_listen",
        reason: format!("{listen:?} is not HOST:PORT"),
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen {
            addr: listen.to_owned(),
            source,
        })?;
    let prom = prometheus();
    let app = Router::new()
        .route("/metrics", get(move || async move { prom.render() }))
        .route("/health", get(health))
        .with_state(health_state);
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "metrics endpoint stopped");
        }
    }))
}
