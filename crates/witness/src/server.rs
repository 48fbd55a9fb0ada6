//! The witness's HTTP API (C2SP tlog-witness), an axum router:
//!
//! - `POST /add-checkpoint`: see [`crate::Witness::add`]; bodies above
//!   `witness.max_body_bytes` are refused with 413 before they are read.
//! - `GET /checkpoint?origin=<origin>`: the newest cosigned checkpoint (404 when none).
//! - `GET /log`: the append-only file, NDJSON.
//! - `GET /health/live`, `GET /health/ready`.
//!
//! Connection limits (timeouts, a connection cap) come from the serve loop the binary runs it
//! in (`auditlog_query::api::serve::serve`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use auditlog_tlog::wire::{WITNESS_ADD_PATH, WITNESS_CHECKPOINT_PATH};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tokio::io::AsyncReadExt as _;

use crate::witness::{AddOutcome, Witness};

/// `Content-Type` of a 409's size body (C2SP tlog-witness).
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";
/// `GET /log`.
pub const LOG_PATH: &str = "/log";

const TEXT: &str = "text/plain; charset=utf-8";

/// The router over `witness`, refusing add bodies above `max_body_bytes`.
pub fn app(witness: Arc<Witness>, max_body_bytes: usize) -> Router {
    Router::new()
        .route(WITNESS_ADD_PATH, post(add_checkpoint))
        .route(WITNESS_CHECKPOINT_PATH, get(checkpoint))
        .route(LOG_PATH, get(log))
        .route("/health/live", get(|| async { "ok\n" }))
        .route("/health/ready", get(|| async { "ready\n" }))
        .route("/health", get(|| async { "ready\n" }))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(witness)
}

/// `app` with `GET /metrics` answered by `render` (the binary's Prometheus recorder).
pub fn with_metrics<F>(app: Router, render: F) -> Router
where
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    app.route("/metrics", get(move || std::future::ready(render())))
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    (status, [(header::CONTENT_TYPE, TEXT)], body).into_response()
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    let Ok(body) = std::str::from_utf8(&body) else {
        crate::metrics::added("malformed");
        return text(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let outcome = match w.add(body, now).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "add-checkpoint failed; nothing cosigned");
            crate::metrics::added("error");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the witness could not record it",
            );
        }
    };
    crate::metrics::added(outcome.label());
    match outcome {
        AddOutcome::Cosigned(sig) => {
            crate::metrics::origins(w.origin_count());
            text(StatusCode::OK, sig.to_line())
        }
        AddOutcome::SizeConflict(size) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
            format!("{size}\n"),
        )
            .into_response(),
        AddOutcome::Malformed(why) => text(StatusCode::BAD_REQUEST, why),
        AddOutcome::UnknownOrigin(why) => text(StatusCode::NOT_FOUND, why),
        AddOutcome::Forbidden(why) => {
            tracing::warn!(why, "add-checkpoint without a valid log signature");
            text(StatusCode::FORBIDDEN, why)
        }
        AddOutcome::RootConflict(why) => {
            tracing::warn!(why, "add-checkpoint: a fork of a cosigned checkpoint");
            text(StatusCode::CONFLICT, why)
        }
        AddOutcome::BadProof(why) => {
            tracing::warn!(why, "add-checkpoint: an inconsistent checkpoint");
            text(StatusCode::UNPROCESSABLE_ENTITY, why)
        }
    }
}

#[derive(Debug, Deserialize)]
struct OriginQuery {
    origin: String,
}

async fn checkpoint(State(w): State<Arc<Witness>>, Query(q): Query<OriginQuery>) -> Response {
    match w.latest_note(&q.origin).await {
        Some(note) => text(StatusCode::OK, note),
        None => text(
            StatusCode::NOT_FOUND,
            format!("no cosigned checkpoint of {:?}", q.origin),
        ),
    }
}

/// Streams the file's complete lines as they are now (later appends are not included).
async fn log(State(w): State<Arc<Witness>>) -> Response {
    let (path, len) = w.log_file();
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "reading the witness file");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the witness file cannot be read",
            );
        }
    };
    let stream = futures::stream::try_unfold(file.take(len), |mut reader| async move {
        let mut buf = vec![0u8; 64 * 1024];
        let n = reader.read(&mut buf).await?;
        buf.truncate(n);
        Ok::<_, std::io::Error>((n > 0).then(|| (Bytes::from(buf), reader)))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}
