//! The HTTP API (axum): workspace endpoints under `/v1` (`POST /v1/ingest` publishes events,
//! [`ingest`]), admin endpoints under `/v1/admin`,
//! `/health` (`/health/live`, `/health/ready`), `/metrics`, `/openapi.json`, and the dashboard
//! merged at `/`. [`serve`] serves it with connection limits and timeouts.
//! The contract is `docs/api.md`; the OpenAPI document served at `/openapi.json` is generated
//! from the handlers ([`openapi`]; a test checks it lists exactly the router's routes).
//!
//! Every request's ClickHouse work (token verification included) has a deadline,
//! `api.query_timeout`, and the health checks a shorter one, `api.health_timeout`: a
//! ClickHouse that stops answering makes the API answer `503 unavailable` with `Retry-After`
//! instead of hanging.

pub mod admin;
pub mod auth;
pub mod error;
pub mod events;
pub mod extract;
pub mod feed;
pub mod health;
pub mod ingest;
pub mod limits;
pub mod log;
pub mod log_export;
pub mod metrics;
pub mod openapi;
pub mod serve;
pub mod streams;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::handler::Handler;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::{extract::State, Router};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::ApiConfig;
use crate::cursor::CursorKey;
use crate::feed::Notifier;
use crate::reader::Reader;
use crate::tokens::Tokens;

/// Shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    /// Event reads.
    pub reader: Reader,
    /// The feed's change ticker (long polls).
    pub notifier: Arc<Notifier>,
    /// Token storage and verification.
    pub tokens: Tokens,
    /// Cursor signing key.
    pub cursor_key: CursorKey,
    /// SHA-256 of the admin token (`None`: admin endpoints off).
    pub admin_hash: Option<[u8; 32]>,
    /// Prometheus exposition.
    pub prometheus: PrometheusHandle,
    /// Deadline of a request's ClickHouse work (until the response head).
    pub query_timeout: Duration,
    /// Deadline of the health checks' ClickHouse ping.
    pub health_timeout: Duration,
    /// Whether `/metrics` is on the main router (`api.metrics_listen` empty).
    pub metrics_on_main: bool,
    /// Failed authentications per client.
    pub auth_failures: auth::FailureLimiter,
    /// HTTP ingest: settings and the producer.
    pub ingest: ingest::Ingest,
}

impl AppState {
    /// State for `cfg`, reading through `client` (bound to the audit database); `/metrics`
    /// renders `prometheus`, the handle of the process's recorder (installed by the caller,
    /// with [`metrics::HISTOGRAM_BUCKETS`]). Describes the API's metrics to that recorder.
    pub fn new(cfg: &ApiConfig, client: clickhouse::Client, prometheus: PrometheusHandle) -> Self {
        metrics::describe();
        feed::describe();
        ingest::describe();
        Self {
            reader: Reader::new(client.clone(), cfg.dedup, cfg.query_timeout),
            notifier: Notifier::new(client.clone()),
            tokens: Tokens::new(client, cfg.token_cache).remember_refused(cfg.unknown_token_cache),
            cursor_key: CursorKey::new(&cfg.cursor_secret),
            admin_hash: auth::admin_hash(&cfg.admin_token),
            prometheus,
            query_timeout: cfg.query_timeout,
            health_timeout: cfg.health_timeout,
            metrics_on_main: cfg.metrics_listen.is_empty(),
            auth_failures: auth::FailureLimiter::new(
                cfg.auth_failure_burst,
                cfg.auth_failure_interval,
            ),
            ingest: ingest::Ingest::new(cfg),
        }
    }

    /// This state with the ingest producer already connected (tests, embedders).
    pub fn with_producer(self, producer: auditlog_producer::Producer) -> Self {
        // A new state's slot is empty.
        let _ = self.ingest.producer_slot().set(producer);
        self
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

fn table(with_metrics: bool) -> Table {
    let t = Table {
        router: Router::new(),
        routes: Vec::new(),
    }
    .add("get", "/v1/workspace", events::workspace)
    .add("get", "/v1/events", events::list)
    .add("get", "/v1/events/{event_id}", events::detail)
    .add("get", "/v1/event-counts", events::counts)
    .add("get", "/v1/export", events::export)
    .add("get", "/v1/feed", feed::feed)
    .add("get", "/v1/log/checkpoint", log::checkpoint)
    .add("get", "/v1/log/proof/inclusion", log::inclusion)
    .add("get", "/v1/log/proof/consistency", log::consistency)
    .add("get", "/v1/log/leaves", log::leaves)
    .add("get", "/v1/log/keys", log::keys)
    .add("get", "/v1/log/retention", log::retention)
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
    .add("post", "/v1/admin/streams", streams::create)
    .add("get", "/v1/admin/streams", streams::list)
    .add("get", "/v1/admin/streams/{stream_id}", streams::get)
    .add("delete", "/v1/admin/streams/{stream_id}", streams::delete)
    .add(
        "post",
        "/v1/admin/streams/{stream_id}/pause",
        streams::pause,
    )
    .add(
        "post",
        "/v1/admin/streams/{stream_id}/resume",
        streams::resume,
    )
    .add(
        "post",
        "/v1/admin/streams/{stream_id}/replay",
        streams::replay,
    )
    .add(
        "post",
        "/v1/admin/streams/{stream_id}/rotate-secret",
        streams::rotate_secret,
    )
    .add("get", "/v1/streams", streams::workspace)
    .add("post", "/v1/ingest", ingest::ingest)
    .add("get", "/v1/schemas/audit-event.json", ingest::schema)
    .add("get", "/health", health::health)
    .add("get", "/health/live", health::health_live)
    .add("get", "/health/ready", health::health_ready)
    .add("get", "/openapi.json", openapi::serve);
    if with_metrics {
        t.add("get", "/metrics", metrics_text)
    } else {
        t
    }
}

/// `(method, path)` of every API route (lower-case method, OpenAPI path syntax), `/metrics`
/// included (it moves to its own listener when `api.metrics_listen` is set).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    table(true).routes
}

/// The whole application: API, metrics middleware, head limits, request deadline, JSON
/// 404/405/431, and the dashboard.
pub fn app(state: AppState) -> Router {
    let state = Arc::new(state);
    let limit = axum::middleware::from_fn_with_state(state.clone(), auth::limit_failures);
    table(state.metrics_on_main)
        .router
        .route_layer(limit)
        .with_state(state.clone())
        .merge(auditlog_dashboard::router(crate::filter::FILTER_PARAMS))
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(state, deadline))
        .layer(axum::middleware::from_fn(limits::check))
        .layer(axum::middleware::from_fn(metrics::track))
}

/// The application of the separate metrics listener (`api.metrics_listen`): `/metrics` only.
pub fn metrics_app(state: &AppState) -> Router {
    let prometheus = state.prometheus.clone();
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || async move { metrics_body(&prometheus) }),
        )
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(limits::check))
}

/// Middleware: a request whose response head is not ready within `api.query_timeout` (a
/// ClickHouse that does not answer) is `503 unavailable` with `Retry-After`. The feed's long
/// poll (`wait`, at most [`feed::MAX_WAIT`]) does not count: its deadline is the two summed
/// (each of its reads still has `api.query_timeout`); nor does ingest's wait for the broker
/// (`api.ingest_timeout`, the handler's own bound).
async fn deadline(State(s): State<S>, req: Request, next: Next) -> Response {
    let route = req.uri().path().to_owned();
    let limit = match route.as_str() {
        "/v1/feed" => s.query_timeout + feed::MAX_WAIT,
        "/v1/ingest" => s.query_timeout + s.ingest.timeout(),
        _ => s.query_timeout,
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(%route, timeout = ?limit, "request deadline passed");
            error::error_response(
                error::ErrorCode::Unavailable,
                &format!(
                    "the event store did not answer within {:?}; retry later",
                    limit
                ),
            )
        }
    }
}

/// Prometheus metrics (on `api.metrics_listen` instead when that is set).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "health",
    security(()),
    responses((status = 200, description = "Prometheus text exposition.", body = String, content_type = "text/plain; version=0.0.4"))
)]
async fn metrics_text(State(s): State<S>) -> Response {
    metrics_body(&s.prometheus)
}

fn metrics_body(prometheus: &PrometheusHandle) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        prometheus.render(),
    )
        .into_response()
}
