//! `/metrics` and `/health` of the worker on `streams.listen`. `/health` answers 200 while the
//! worker's heartbeat is recent (it delivers), 503 otherwise (no heartbeat yet, ClickHouse
//! unreachable for `worker_expiry`: it delivers nothing) or while stopping.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::sync::watch;

use crate::worker::Health;

#[derive(Debug, Serialize)]
struct Report {
    status: &'static str,
    worker_id: String,
    last_heartbeat_ms: i64,
    owned_streams: i64,
    delivering_streams: i64,
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    worker_id: String,
    expiry_ms: i64,
}

async fn health(State(s): State<AppState>) -> impl IntoResponse {
    let last = s.health.heartbeat_ms.load(Ordering::SeqCst);
    let now = chrono::Utc::now().timestamp_millis();
    let status = if s.health.stopping.load(Ordering::SeqCst) {
        "stopping"
    } else if last == 0 {
        "starting"
    } else if now - last < s.expiry_ms {
        "ok"
    } else {
        "degraded"
    };
    let code = if status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let report = Report {
        status,
        worker_id: s.worker_id.clone(),
        last_heartbeat_ms: last,
        owned_streams: s.health.owned.load(Ordering::SeqCst),
        delivering_streams: s.health.running.load(Ordering::SeqCst),
    };
    (code, Json(report))
}

/// Serves `/metrics` (from `prom`) and `/health` on `listener` until `stop` turns true.
pub fn serve(
    listener: tokio::net::TcpListener,
    health_state: Arc<Health>,
    worker_id: String,
    expiry: std::time::Duration,
    prom: PrometheusHandle,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .route("/health", get(health))
        .with_state(AppState {
            health: health_state,
            worker_id,
            expiry_ms: expiry.as_millis() as i64,
        });
    auditlog_settings::endpoint::serve(listener, app, prom, stop)
}
