//! The HTTP API (axum): workspace endpoints under `/v1`, admin endpoints under `/v1/admin`,
//! `/health`, `/metrics`, `/openapi.json`, and the dashboard merged at `/`.
//! The contract is `docs/api.md`; `openapi.json` describes the same routes (a test checks it).

pub mod admin;
pub mod auth;
pub mod error;
pub mod events;
pub mod metrics;

use std::sync::Arc;
use std::time::Duration;

use axum::handler::Handler;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::{extract::State, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::config::ApiConfig;
use crate::cursor::CursorKey;
use crate::reader::Reader;
use crate::tokens::Tokens;

/// The OpenAPI 3.1 document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    /// Event reads.
    pub reader: Reader,
    /// Token storage and verification.
    pub tokens: Tokens,
    /// Cursor signing key.
    pub cursor_key: CursorKey,
    /// SHA-256 of the admin token (`None`: admin endpoints off).
    pub admin_hash: Option<[u8; 32]>,
    /// Prometheus exposition.
    pub prometheus: PrometheusHandle,
    /// Deadline of one ClickHouse read.
    pub query_timeout: Duration,
    /// Failed authentications per client.
    pub auth_failures: auth::FailureLimiter,
}

impl AppState {
    /// State for `cfg`, reading through `client` (bound to the audit database).
    pub fn new(cfg: &ApiConfig, client: clickhouse::Client) -> Self {
        Self {
            reader: Reader::new(client.clone(), cfg.dedup, cfg.query_timeout()),
            tokens: Tokens::new(client, cfg.token_cache())
                .remember_refused(cfg.unknown_token_cache),
            cursor_key: CursorKey::new(&cfg.cursor_secret),
            admin_hash: auth::admin_hash(&cfg.admin_token),
            prometheus: metrics::prometheus(),
            query_timeout: cfg.query_timeout(),
            auth_failures: auth::FailureLimiter::new(
                cfg.auth_failure_burst,
                cfg.auth_failure_interval,
            ),
        }
    }
}

type S = Arc<AppState>;

/// The router plus the `(method, path)` of every route it holds, built together so the list
/// cannot drift from the router.
struct Table {
    router: Router<S>,
    routes: Vec<(&'static str, &'static str)>,
}

impl Table {
    fn add<H, T>(mut self, method: &'static str, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = match method {
            "get" => MethodFilter::GET,
            "put" => MethodFilter::PUT,
            "post" => MethodFilter::POST,
            _ => MethodFilter::DELETE,
        };
        self.router = self.router.route(path, on(filter, handler));
        self.routes.push((method, path));
        self
    }
}

fn table() -> Table {
    Table {
        router: Router::new(),
        routes: Vec::new(),
    }
    .add("get", "/v1/workspace", events::workspace)
    .add("get", "/v1/events", events::list)
    .add("get", "/v1/events/{event_id}", events::detail)
    .add("get", "/v1/event-counts", events::counts)
    .add("get", "/v1/export", events::export)
    .add(
        "get",
        "/v1/admin/workspaces/{workspace_id}/plan",
        admin::get_plan,
    )
    .add(
        "put",
        "/v1/admin/workspaces/{workspace_id}/plan",
        admin::put_plan,
    )
    .add("post", "/v1/admin/tokens", admin::create_token)
    .add("get", "/v1/admin/tokens", admin::list_tokens)
    .add("delete", "/v1/admin/tokens/{token_id}", admin::revoke_token)
    .add("get", "/health", health)
    .add("get", "/metrics", metrics_text)
    .add("get", "/openapi.json", openapi)
}

/// `(method, path)` of every API route (lower-case method, OpenAPI path syntax).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    table().routes
}

/// The whole application: API, metrics middleware, JSON 404/405, and the dashboard.
pub fn app(state: AppState) -> Router {
    let state = Arc::new(state);
    let limit = axum::middleware::from_fn_with_state(state.clone(), auth::limit_failures);
    table()
        .router
        .method_not_allowed_fallback(error::method_not_allowed)
        .route_layer(limit)
        .with_state(state)
        .merge(auditlog_dashboard::router())
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(metrics::track))
}

/// `GET /health`.
async fn health(State(s): State<S>) -> Response {
    match s.reader.ping().await {
        Ok(()) => Json(json!({"status": "ok", "clickhouse": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health: clickhouse unreachable");
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "degraded", "clickhouse": "unreachable",
                    "error": {"code": "unavailable", "message": "clickhouse is unreachable"}})),
            )
                .into_response();
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(error::RETRY_AFTER_SECS),
            );
            r
        }
    }
}

/// `GET /metrics`.
async fn metrics_text(State(s): State<S>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        s.prometheus.render(),
    )
        .into_response()
}

/// `GET /openapi.json`.
async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}
