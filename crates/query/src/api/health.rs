//! The health endpoints (no token): `/health/live` checks nothing, `/health/ready` and
//! `/health` check that ClickHouse answers `SELECT 1` within `api.health_timeout`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ErrorCode, ErrorDetail, RETRY_AFTER_SECS};
use super::AppState;

/// `ok`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Up {
    /// Working.
    Ok,
}

/// How the ClickHouse check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckFailed {
    /// No answer within `api.health_timeout`.
    Timeout,
    /// No connection.
    Unreachable,
    /// An error answer.
    Error,
}

/// `degraded`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Degraded {
    /// A dependency failed its check.
    Degraded,
}

/// `unavailable`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotReady {
    /// Not ready to serve.
    Unavailable,
}

/// `GET /health` when ClickHouse answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    status: Up,
    /// `ok`.
    clickhouse: Up,
    /// How long the check took, milliseconds.
    clickhouse_ms: u64,
}

/// `GET /health` when ClickHouse does not answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthDegraded {
    /// `degraded`.
    status: Degraded,
    /// How the check failed.
    clickhouse: CheckFailed,
    /// How long the check took, milliseconds.
    clickhouse_ms: u64,
    /// `unavailable` and what failed.
    error: ErrorDetail,
}

/// `GET /health/live`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    /// `ok`.
    status: Up,
}

/// `GET /health/ready` when ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ok`.
    status: Up,
    /// Every check, `ok`.
    checks: ReadyChecks,
}

/// The checks of a ready instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyChecks {
    /// `ok`.
    clickhouse: Up,
}

/// `GET /health/ready` when not ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unready {
    /// `unavailable`.
    status: NotReady,
    /// The failed check.
    checks: FailedChecks,
    /// `unavailable` and what failed.
    error: ErrorDetail,
}

/// The checks of an instance that is not ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedChecks {
    /// How the check failed.
    clickhouse: CheckFailed,
}

/// The ClickHouse check of the health endpoints: how it failed, and how long it took.
async fn check_clickhouse(s: &AppState) -> (Result<(), CheckFailed>, Duration) {
    let start = std::time::Instant::now();
    let state = match tokio::time::timeout(s.health_timeout, s.reader.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(crate::Error::Unavailable(e))) => {
            tracing::warn!(error = %e, "health: clickhouse unreachable");
            Err(CheckFailed::Unreachable)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: clickhouse check failed");
            Err(CheckFailed::Error)
        }
        Err(_) => {
            tracing::warn!(timeout = ?s.health_timeout, "health: clickhouse did not answer");
            Err(CheckFailed::Timeout)
        }
    };
    (state, start.elapsed())
}

fn unavailable(body: impl Serialize) -> Response {
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    r
}

fn check_message(state: CheckFailed, timeout: Duration) -> String {
    match state {
        CheckFailed::Timeout => format!("clickhouse did not answer within {timeout:?}"),
        CheckFailed::Unreachable => "clickhouse is unreachable".to_owned(),
        CheckFailed::Error => "clickhouse answered with an error".to_owned(),
    }
}

/// Detailed readiness, with the ClickHouse check's latency.
///
/// Ready when ClickHouse answers `SELECT 1` within `api.health_timeout` (default 1s).
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready.", body = Health),
        (status = 503, description = "ClickHouse unreachable, failing or not answering in time.", body = HealthDegraded,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
    )
)]
pub async fn health(State(s): State<Arc<AppState>>) -> Response {
    let (state, took) = check_clickhouse(&s).await;
    let ms = took.as_millis() as u64;
    match state {
        Ok(()) => Json(Health {
            status: Up::Ok,
            clickhouse: Up::Ok,
            clickhouse_ms: ms,
        })
        .into_response(),
        Err(st) => unavailable(HealthDegraded {
            status: Degraded::Degraded,
            clickhouse: st,
            clickhouse_ms: ms,
            error: ErrorDetail::new(ErrorCode::Unavailable, check_message(st, s.health_timeout)),
        }),
    }
}

/// Liveness: 200 while the process serves (no dependency checked).
#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "healthLive",
    tag = "health",
    security(()),
    responses((status = 200, description = "Alive.", body = Live))
)]
pub async fn health_live() -> Response {
    Json(Live { status: Up::Ok }).into_response()
}

/// Readiness: 200 when ClickHouse answers, else 503 naming the failed check.
///
/// A readiness probe: ClickHouse must answer `SELECT 1` within `api.health_timeout`; take
/// the instance out of the load balancer while it fails.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "healthReady",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready.", body = Ready),
        (status = 503, description = "Not ready.", body = Unready,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
    )
)]
pub async fn health_ready(State(s): State<Arc<AppState>>) -> Response {
    match check_clickhouse(&s).await.0 {
        Ok(()) => Json(Ready {
            status: Up::Ok,
            checks: ReadyChecks { clickhouse: Up::Ok },
        })
        .into_response(),
        Err(st) => unavailable(Unready {
            status: NotReady::Unavailable,
            checks: FailedChecks { clickhouse: st },
            error: ErrorDetail::new(
                ErrorCode::Unavailable,
                format!("not ready: {}", check_message(st, s.health_timeout)),
            ),
        }),
    }
}
