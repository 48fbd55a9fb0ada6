//! `/metrics`, `/health` (= `/health/ready`) and `/health/live` on `relay.listen`.
//!
//! Ready (200) only when the outbox database answered within the last few seconds (the backlog
//! count, every second, and every round) and the broker acknowledged the last rows sent (or,
//! while there was nothing to send, answered a metadata request for the topic within the last
//! 5 s). The report also carries the backlog and the PostgreSQL `LISTEN` connection's state
//! (informational: without it the relay still ships, at `relay.poll_interval`). Live: the loop
//! turned within `stuck_after`.

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

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One dependency's last known state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Check {
    /// `None` until first known.
    pub ok: Option<bool>,
    /// What was seen (the error, when failing).
    pub detail: String,
    /// When it was last seen (epoch ms).
    pub at_ms: i64,
}

impl Check {
    fn set(&mut self, outcome: Result<&str, String>) {
        let (ok, detail) = match outcome {
            Ok(d) => (true, d.to_owned()),
            Err(e) => (false, e),
        };
        *self = Check {
            ok: Some(ok),
            detail,
            at_ms: now_ms(),
        };
    }
}

#[derive(Debug, Default)]
struct Checks {
    database: Check,
    broker: Check,
    listen: Option<Check>,
}

/// What the relay's tasks report.
#[derive(Debug, Default)]
pub struct Health {
    turn_ms: AtomicI64,
    busy_ms: AtomicI64,
    backlog: AtomicI64,
    stopping: AtomicBool,
    checks: Mutex<Checks>,
}

impl Health {
    fn checks(&self) -> std::sync::MutexGuard<'_, Checks> {
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// The loop turned.
    pub fn turned(&self) {
        self.turn_ms.store(now_ms(), Ordering::SeqCst);
    }
    /// The database answered (`Ok`) or failed.
    pub fn database(&self, outcome: Result<&str, String>) {
        self.checks().database.set(outcome);
    }
    /// A round with rows: the broker acknowledged them all (`Ok`) or not.
    pub fn delivered(&self, outcome: Result<&str, String>) {
        self.busy_ms.store(now_ms(), Ordering::SeqCst);
        self.checks().broker.set(outcome);
    }
    /// The idle probe's answer; ignored while rounds with rows report more recent news.
    pub fn probed(&self, outcome: Result<&str, String>) {
        if now_ms() - self.busy_ms.load(Ordering::SeqCst) > PROBE_EVERY.as_millis() as i64 {
            self.checks().broker.set(outcome);
        }
    }
    /// Whether a round with rows ran recently (the probe need not).
    pub fn busy(&self) -> bool {
        now_ms() - self.busy_ms.load(Ordering::SeqCst) <= PROBE_EVERY.as_millis() as i64
    }
    /// The `LISTEN` connection is up (`None`) or failed.
    pub fn listener(&self, error: Option<String>) {
        let mut c = self.checks();
        let check = c.listen.get_or_insert_with(Check::default);
        match error {
            None => check.set(Ok("listening")),
            Some(e) => check.set(Err(e)),
        }
    }
    /// Rows in the outbox.
    pub fn backlog(&self, rows: u64) {
        self.backlog.store(rows as i64, Ordering::SeqCst);
    }
    /// Shutting down.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// The `/health` answer now.
    pub fn report(&self) -> Report {
        let now = now_ms();
        let c = self.checks();
        let fresh = |check: &Check| {
            check.ok == Some(true) && now - check.at_ms <= STALE_AFTER.as_millis() as i64
        };
        let status = if self.stopping.load(Ordering::SeqCst) {
            "stopping"
        } else if c.database.ok.is_none() || c.broker.ok.is_none() {
            "starting"
        } else if fresh(&c.database) && fresh(&c.broker) {
            "ok"
        } else {
            "degraded"
        };
        let backlog = self.backlog.load(Ordering::SeqCst);
        Report {
            status,
            database: c.database.clone(),
            broker: c.broker.clone(),
            listen: c.listen.clone(),
            backlog_rows: (backlog >= 0).then_some(backlog),
            last_turn_ms: self.turn_ms.load(Ordering::SeqCst),
        }
    }
}

/// How often the broker is probed while there is nothing to send.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// A check older than this no longer counts as passing (its task is stuck).
const STALE_AFTER: Duration = Duration::from_secs(15);

/// The `/health` body.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `ok`, `starting`, `degraded` or `stopping`.
    pub status: &'static str,
    /// The outbox database.
    pub database: Check,
    /// The broker.
    pub broker: Check,
    /// PostgreSQL's `LISTEN` connection (absent on MySQL).
    pub listen: Option<Check>,
    /// Rows in the outbox at the last count (absent before the first).
    pub backlog_rows: Option<i64>,
    /// When the loop last turned (epoch ms).
    pub last_turn_ms: i64,
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    stuck_after_ms: i64,
}

async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    let report = s.health.report();
    let code = if report.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
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

/// Binds `listen` and serves until `stop` turns true. The loop counts as stuck when it has not
/// turned for `stuck_after`.
pub async fn serve(
    listen: &str,
    health: Arc<Health>,
    stuck_after: Duration,
    prom: PrometheusHandle,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        auditlog_settings::BadSetting::new("relay.listen", format!("{listen:?} is not HOST:PORT"))
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("relay.listen: cannot listen on {listen}: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_database_and_broker_pass() {
        let h = Health::default();
        assert_eq!(h.report().status, "starting");
        h.database(Ok("answers"));
        assert_eq!(h.report().status, "starting");
        h.delivered(Ok("delivering"));
        assert_eq!(h.report().status, "ok");
        h.delivered(Err("timed out".into()));
        let r = h.report();
        assert_eq!(
            (r.status, r.broker.detail.as_str()),
            ("degraded", "timed out")
        );
        // The idle probe does not overwrite what a round just reported.
        h.probed(Ok("answers"));
        assert_eq!(h.report().status, "degraded");
        h.delivered(Ok("delivering"));
        h.database(Err("connection refused".into()));
        assert_eq!(h.report().status, "degraded");
        h.database(Ok("answers"));
        h.listener(Some("gone".into()));
        assert_eq!(h.report().status, "ok", "LISTEN is informational");
        h.stopping();
        assert_eq!(h.report().status, "stopping");
    }
}
