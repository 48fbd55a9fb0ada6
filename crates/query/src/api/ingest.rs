//! `POST /v1/ingest`: events over HTTP, for services that cannot link the producer library
//! (docs/ingest.md), and `GET /v1/schemas/audit-event.json`, the event's JSON Schema.
//!
//! One request is read with the body limit, split into lines, and each line decoded exactly as
//! `auditlog emit` decodes it ([`auditlog_event::decode_with_defaults`]: `event_id`, `time`
//! and `version` filled in when absent) and validated as `emit` validates. A line the token
//! may not write (its `workspace_id`) is rejected. The good lines are enqueued on the producer
//! at once ([`Producer::enqueue_prepared`], so librdkafka batches them) and the answer waits
//! until the broker acknowledged each, at most `api.ingest_timeout`:
//!
//! - `accepted` lists only events the broker acknowledged (`acks=all`);
//! - `rejected` the lines that are not valid events or not the token's to write;
//! - `failed` valid lines that were not acknowledged: the buffer was full (`429 overloaded`,
//!   not sent), or the broker did not acknowledge in time (`503 unavailable`; such an event may
//!   still be stored later, so a retry must carry the same `event_id`: the consumer collapses
//!   the copies).
//!
//! Metrics: `auditlog_api_ingest_events_total{result="accepted"|"rejected"|"failed"}`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use auditlog_event::{decode_with_defaults, DecodeError, Prepared};
use auditlog_producer::{EmitError, Producer};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{
    error_response, ErrorCode, ErrorDetail, OVERLOADED_RETRY_AFTER_SECS, RETRY_AFTER_SECS,
};
use super::openapi::{NotFound, PayloadTooLarge, UnsupportedMediaType, V1Errors};
use super::{auth, AppState};
use crate::config::ApiConfig;
use crate::params::Params;
use crate::tokens::Grant;
use crate::{Error, Result};

/// Events of ingest requests, by `result` (`accepted`, `rejected`, `failed`).
pub const EVENTS: &str = "auditlog_api_ingest_events_total";
/// The event's JSON Schema, served at `/v1/schemas/audit-event.json`.
pub const EVENT_SCHEMA: &str = include_str!("../../../event/schema/audit-event.schema.json");
/// The content type of a single event.
pub const JSON: &str = "application/json";
/// The content type of a batch, one event per line.
pub const NDJSON: &str = "application/x-ndjson";

/// Describes the ingest metrics to the recorder.
pub fn describe() {
    metrics::describe_counter!(
        EVENTS,
        "Events of POST /v1/ingest requests, by result: accepted (acknowledged by the broker), \
         rejected (invalid, or a workspace the token may not write), failed (not acknowledged)."
    );
}

/// Ingest settings and the producer (set once it is connected).
#[derive(Debug)]
pub struct Ingest {
    enabled: bool,
    max_body_bytes: usize,
    max_lines: usize,
    timeout: Duration,
    producer: Arc<OnceLock<Producer>>,
}

impl Ingest {
    /// The settings of `cfg`, without a producer yet.
    pub fn new(cfg: &ApiConfig) -> Self {
        Self {
            enabled: cfg.ingest_enabled,
            max_body_bytes: cfg.ingest_max_body_bytes,
            max_lines: cfg.ingest_max_lines,
            timeout: cfg.ingest_timeout,
            producer: Arc::new(OnceLock::new()),
        }
    }

    /// Where the producer goes once it is connected (`auditlog serve` connects it in the
    /// background; until then ingest answers 503).
    pub fn producer_slot(&self) -> Arc<OnceLock<Producer>> {
        Arc::clone(&self.producer)
    }

    /// How long a request may wait for acknowledgements.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// An event the broker acknowledged.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Accepted {
    /// Line number in the body (1-based; a single JSON event is line 1).
    pub line: usize,
    /// The event's id (filled in when the line had none).
    pub event_id: Uuid,
}

/// A line that is not a valid event, or not the token's to write.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rejected {
    /// Line number in the body (1-based).
    pub line: usize,
    /// JSON path of the field to blame (`actor.id`, `workspace_id`, ...); `null` when the line
    /// as a whole is wrong (not JSON, not UTF-8, too large).
    #[schema(required = true)]
    pub field: Option<String>,
    /// `invalid_field`, `unknown_field`, `unknown_version`, `not_json`, `invalid_utf8`,
    /// `too_large` (the codes of `auditlog emit` and the dead-letter topic) or
    /// `workspace_not_allowed`.
    pub code: String,
    /// What is wrong, starting with the field.
    pub message: String,
}

/// A valid line that was not acknowledged.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Failed {
    /// Line number in the body (1-based).
    pub line: usize,
    /// The event's id: send the line again with this `event_id` to retry safely.
    pub event_id: Uuid,
    /// `overloaded` (not sent: the producer's buffer was full) or `unavailable` (not
    /// acknowledged in time; it may still be stored).
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
}

/// The answer of `POST /v1/ingest`: per-line results (and `error` unless every valid line was
/// acknowledged).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = IngestResult, example = json!({
    "accepted": [{"line": 1, "event_id": "0190f3b2-7c1e-7000-8000-000000000001"}],
    "rejected": [{"line": 2, "field": "actor.id", "code": "invalid_field", "message": "actor.id: is required and must not be empty"}],
    "failed": []
}))]
pub struct IngestResult {
    /// Events the broker acknowledged, in line order.
    pub accepted: Vec<Accepted>,
    /// Lines that are not valid events or not the token's to write, in line order.
    pub rejected: Vec<Rejected>,
    /// Valid lines that were not acknowledged, in line order.
    pub failed: Vec<Failed>,
    /// Present on a 422 (every line rejected), 429 (`overloaded`) or 503 (`unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<ErrorDetail>,
}

/// Publish events: one JSON event or an NDJSON batch.
///
/// One event as `application/json`, or one per line as `application/x-ndjson`. Each line is decoded and validated as `auditlog emit` does (`event_id`, `time` and
/// `version` are filled in when absent). The answer comes once the broker acknowledged every
/// accepted event. 200: every valid line acknowledged (check `rejected`); 422: every line
/// rejected; 429 `overloaded` and 503 `unavailable` carry the same per-line fields beside
/// `error` (what is in `accepted` was acknowledged; what is in `failed` was not). Idempotent on
/// `event_id`: set it to retry safely.
#[utoipa::path(
    post,
    path = "/v1/ingest",
    operation_id = "ingest",
    tag = "ingest",
    request_body(
        description = "One event (`application/json`, the schema at `/v1/schemas/audit-event.json`) or one event per line (`application/x-ndjson`).",
        content(
            (Object = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    security(("ingestToken" = [])),
    responses(
        (status = 200, description = "Every valid line acknowledged; `rejected` lists the others.", body = IngestResult),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, description = "`unprocessable`: every line rejected (the per-line results beside `error`).", body = IngestResult),
        V1Errors,
    )
)]
pub async fn ingest(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response> {
    let cfg = &s.ingest;
    if !cfg.enabled {
        return Err(Error::NotFound(
            "ingest is off on this server (api.ingest_enabled = false)".into(),
        ));
    }
    let grant = auth::ingest(&s, &headers).await?;
    Params::parse(raw.as_deref())?.only(&[])?;
    let batch = content_type(&headers)?;
    let bytes = read_body(&headers, body, cfg.max_body_bytes).await?;
    let lines = split(&bytes, batch);
    if lines.is_empty() {
        return Err(Error::bad(
            "body",
            "empty: send one JSON event, or NDJSON lines (one event per line)",
        ));
    }
    if lines.len() > cfg.max_lines {
        return Err(Error::PayloadTooLarge(format!(
            "body: {} events, at most {} per request (api.ingest_max_lines); nothing was published",
            lines.len(),
            cfg.max_lines
        )));
    }
    let Some(producer) = cfg.producer.get() else {
        return Ok(error_response(
            ErrorCode::Unavailable,
            "the Kafka producer is not connected yet; nothing was published, retry later",
        ));
    };
    let mut result = IngestResult {
        accepted: Vec::new(),
        rejected: Vec::new(),
        failed: Vec::new(),
        error: None,
    };
    let good = check_lines(&grant, &lines, &mut result.rejected);
    publish(producer, good, cfg.timeout, &mut result).await;
    count(&result);
    Ok(answer(result))
}

/// Whether the body is a batch (`application/x-ndjson`) or one event (`application/json`).
fn content_type(headers: &HeaderMap) -> Result<bool> {
    let unsupported = |what: &str| {
        Error::UnsupportedMediaType(format!(
            "Content-Type: {what}; send {JSON} (one event) or {NDJSON} (one event per line)"
        ))
    };
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return Err(unsupported("missing"));
    };
    let text = v.to_str().map_err(|_| unsupported("not ASCII"))?;
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(JSON) {
        Ok(false)
    } else if essence.eq_ignore_ascii_case(NDJSON) {
        Ok(true)
    } else {
        Err(unsupported(&format!("{essence:?} is not accepted")))
    }
}

/// The body, at most `max` bytes: a larger `Content-Length` is refused before reading, and a
/// body that grows past `max` is refused as soon as it does.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<bytes::Bytes> {
    let too_large = || {
        Error::PayloadTooLarge(format!(
            "body: larger than {max} bytes (api.ingest_max_body_bytes); send smaller batches"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = std::pin::pin!(body);
    let mut buf = bytes::BytesMut::with_capacity(declared.map_or(8192, |n| n as usize));
    while let Some(frame) =
        std::future::poll_fn(|cx| http_body::Body::poll_frame(body.as_mut(), cx)).await
    {
        let frame = frame.map_err(|e| Error::bad("body", format!("could not be read: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// The non-blank lines of the body with their 1-based numbers (one event: the whole body as
/// line 1). A `\r` before a line end is dropped.
fn split(body: &[u8], batch: bool) -> Vec<(usize, &[u8])> {
    let blank = |b: &[u8]| b.iter().all(u8::is_ascii_whitespace);
    if !batch {
        return if blank(body) {
            Vec::new()
        } else {
            vec![(1, body)]
        };
    }
    body.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !blank(l))
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .collect()
}

/// Decodes and validates every line; the good ones prepared for the producer, the others in
/// `rejected`.
fn check_lines(
    grant: &Grant,
    lines: &[(usize, &[u8])],
    rejected: &mut Vec<Rejected>,
) -> Vec<(usize, Prepared)> {
    let mut good = Vec::with_capacity(lines.len());
    for &(line, bytes) in lines {
        let checked = decode_with_defaults(bytes).and_then(|event| {
            if !grant.may_write(&event.workspace_id) {
                return Ok(Err(Rejected {
                    line,
                    field: Some("workspace_id".into()),
                    code: "workspace_not_allowed".into(),
                    message: format!(
                        "workspace_id: this token may not write workspace {:?}",
                        event.workspace_id
                    ),
                }));
            }
            Ok(Ok(event.prepare().map_err(DecodeError::from)?))
        });
        match checked {
            Ok(Ok(prepared)) => good.push((line, prepared)),
            Ok(Err(refused)) => rejected.push(refused),
            Err(e) => rejected.push(Rejected {
                line,
                field: e.field().map(str::to_owned),
                code: e.code().to_owned(),
                message: e.to_string(),
            }),
        }
    }
    good
}

/// Enqueues every good line, then waits (at most `timeout`) for each acknowledgement. Once the
/// buffer is full the remaining lines are not sent.
async fn publish(
    producer: &Producer,
    good: Vec<(usize, Prepared)>,
    timeout: Duration,
    result: &mut IngestResult,
) {
    let mut waiting = Vec::with_capacity(good.len());
    let mut full = false;
    for (line, prepared) in good {
        let event_id = prepared.event_id;
        if full {
            result.failed.push(overloaded(line, event_id));
            continue;
        }
        match producer.enqueue_prepared(&prepared) {
            Ok(delivery) => waiting.push((line, event_id, delivery)),
            Err(EmitError::QueueFull { .. }) => {
                full = true;
                result.failed.push(overloaded(line, event_id));
            }
            Err(e) => result.failed.push(Failed {
                line,
                event_id,
                code: ErrorCode::Unavailable,
                message: format!("not sent: {e}"),
            }),
        }
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for (line, event_id, delivery) in waiting {
        match tokio::time::timeout_at(deadline, delivery).await {
            Ok(Ok(_)) => result.accepted.push(Accepted { line, event_id }),
            Ok(Err(e)) => result.failed.push(Failed {
                line,
                event_id,
                code: ErrorCode::Unavailable,
                message: format!(
                    "not acknowledged by the broker: {e}; retry with the same event_id"
                ),
            }),
            Err(_) => result.failed.push(Failed {
                line,
                event_id,
                code: ErrorCode::Unavailable,
                message: format!(
                    "not acknowledged by the broker within {timeout:?} (api.ingest_timeout); it \
                     may still be stored: retry with the same event_id"
                ),
            }),
        }
    }
    result.failed.sort_by_key(|f| f.line);
}

fn overloaded(line: usize, event_id: Uuid) -> Failed {
    Failed {
        line,
        event_id,
        code: ErrorCode::Overloaded,
        message: "not sent: the producer's buffer is full; retry later with the same event_id"
            .into(),
    }
}

fn count(r: &IngestResult) {
    for (result, n) in [
        ("accepted", r.accepted.len()),
        ("rejected", r.rejected.len()),
        ("failed", r.failed.len()),
    ] {
        metrics::counter!(EVENTS, "result" => result).increment(n as u64);
    }
}

/// The status of `r`: 200 when every valid line was acknowledged (and at least one line was
/// valid), 422 when every line was rejected, 503 when some event may not have reached the
/// broker, 429 when only the buffer was full.
fn answer(mut r: IngestResult) -> Response {
    let (code, retry_after) = if r.failed.is_empty() {
        if !r.accepted.is_empty() {
            return (StatusCode::OK, Json(r)).into_response();
        }
        (ErrorCode::Unprocessable, None)
    } else if r.failed.iter().any(|f| f.code == ErrorCode::Unavailable) {
        (ErrorCode::Unavailable, Some(RETRY_AFTER_SECS))
    } else {
        (ErrorCode::Overloaded, Some(OVERLOADED_RETRY_AFTER_SECS))
    };
    let message = match code {
        ErrorCode::Unprocessable => {
            let first = &r.rejected[0];
            format!(
                "every line was rejected (line {}: {}); nothing was published",
                first.line, first.message
            )
        }
        _ => format!(
            "{} of {} valid events were not acknowledged (see failed); those in accepted were",
            r.failed.len(),
            r.failed.len() + r.accepted.len()
        ),
    };
    r.error = Some(ErrorDetail::new(code, message));
    let mut resp = (code.status(), Json(r)).into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// The event's JSON Schema (draft 2020-12): what one ingest line must be.
#[utoipa::path(
    get,
    path = "/v1/schemas/audit-event.json",
    operation_id = "eventSchema",
    tag = "ingest",
    security(()),
    responses((status = 200, description = "The JSON Schema of an event (`crates/event/schema/audit-event.schema.json`, byte for byte).", body = Object, content_type = "application/schema+json"))
)]
pub async fn schema() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/schema+json"),
        )],
        EVENT_SCHEMA,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_and_blank_ones_skipped() {
        let body = b"{\"a\":1}\r\n\n  \n{\"b\":2}\n";
        let lines = split(body, true);
        assert_eq!(lines, vec![(1, &b"{\"a\":1}"[..]), (4, &b"{\"b\":2}"[..])]);
        assert_eq!(split(b"{\n\"a\": 1\n}", false).len(), 1);
        assert!(split(b" \n ", false).is_empty());
        assert!(split(b"", true).is_empty());
    }

    #[test]
    fn content_types_are_json_or_ndjson() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            content_type(&h)
        };
        assert!(!with("application/json; charset=utf-8").unwrap());
        assert!(with("Application/X-NDJSON").unwrap());
        for bad in ["text/plain", "application/jsonx", ""] {
            let e = with(bad).unwrap_err();
            assert!(matches!(e, Error::UnsupportedMediaType(_)), "{bad}");
            assert!(e.to_string().starts_with("Content-Type: "), "{e}");
        }
        assert!(content_type(&HeaderMap::new()).is_err());
    }
}
