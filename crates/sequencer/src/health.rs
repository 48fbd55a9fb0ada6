//! `/metrics`, `/health/live` and `/health/ready` on `sequencer.listen`. Live: the loop turns
//! (its last turn is recent), whether steps succeed or not. Ready: the last step succeeded
//! (ClickHouse answers, the log tables are there) and the process is not stopping.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::step::now_ms;

/// What the loop reports.
#[derive(Debug, Default)]
pub struct Health {
    turn_ms: AtomicI64,
    step_ok_ms: AtomicI64,
    stopping: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Health {
    /// The loop turned.
    pub fn turned(&self) {
        self.turn_ms.store(now_ms(), Ordering::SeqCst);
    }
    /// A step succeeded.
    pub fn step_ok(&self) {
        self.step_ok_ms.store(now_ms(), Ordering::SeqCst);
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
    /// A step failed.
    pub fn step_failed(&self, e: &Error) {
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
    }
    /// Shutting down.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

#[derive(Debug, Serialize)]
struct Report {
    status: &'static str,
    last_step_ms: i64,
    error: Option<String>,
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    stuck_after_ms: i64,
}

async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    let h = &s.health;
    let error = h
        .error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let last = h.step_ok_ms.load(Ordering::SeqCst);
    let status = if h.stopping.load(Ordering::SeqCst) {
        "stopping"
    } else if error.is_some() {
        "degraded"
    } else if last == 0 {
        "starting"
    } else {
        "ok"
    };
    let code = if status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let report = Report {
        status,
        last_step_ms: last,
        error,
    };
    (code, Json(report))
}

async fn live(State(s): State<AppState>) -> impl IntoResponse {
    let turn = s.health.turn_ms.load(Ordering::SeqCst);
    let live = turn == 0 || now_ms() - turn < s.stuck_after_ms;
    let code = if live {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, if live { "live\n" } else { "stuck\n" })
}

/// Binds `listen` and serves until `stop` turns true. The loop counts as stuck when it has
/// not turned for `stuck_after`.
pub async fn serve(
    listen: &str,
    health: Arc<Health>,
    stuck_after: Duration,
    prom: PrometheusHandle,
    stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        auditlog_settings::BadSetting::new(
            "sequencer.listen",
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
        .route("/health", get(ready))
        .route("/health/ready", get(ready))
        .route("/health/live", get(live))
        .with_state(AppState {
            health,
            stuck_after_ms: stuck_after.as_millis() as i64,
        });
    Ok(auditlog_settings::endpoint::serve(
        listener, app, prom, stop,
    ))
}
