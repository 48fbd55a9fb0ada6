//! Workspace endpoints: the workspace's plan, list, detail, counts and export.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::path_rejection;
use super::{auth, AppState};
use crate::filter::{limit_from_params, Filter, Order, FILTER_PARAMS};
use crate::params::Params;
use crate::reader::EventRow;
use crate::{Error, Result};

/// Bytes buffered before an export chunk is sent.
const EXPORT_CHUNK: usize = 64 * 1024;

/// CSV header of the export.
pub const CSV_COLUMNS: [&str; 17] = [
    "event_id",
    "time",
    "workspace_id",
    "bucket",
    "event",
    "actor_type",
    "actor_id",
    "actor_name",
    "targets",
    "description",
    "remote_ip",
    "user_agent",
    "outcome",
    "failure_reason",
    "correlation_id",
    "request",
    "response",
];

/// The plan body shared with the admin endpoints.
pub fn plan_json(p: &auditlog_store::WorkspacePlan) -> Value {
    json!({
        "workspace_id": p.workspace_id,
        "plan": p.plan.name(),
        "retention_days": p.plan.retention_days(),
    })
}

/// The filter parameters plus `extra`.
fn with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = FILTER_PARAMS.to_vec();
    v.extend_from_slice(extra);
    v
}

/// `GET /v1/workspace`.
pub async fn workspace(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response> {
    let ws = auth::workspace(&s, &headers).await?;
    let plan = auditlog_store::plans::get_plan(s.reader.client(), &ws).await?;
    Ok(Json(plan_json(&plan)).into_response())
}

/// `GET /v1/events`.
pub async fn list(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let ws = auth::workspace(&s, &headers).await?;
    let p = Params::parse(raw.as_deref())?;
    p.only(&with(&["order", "limit", "cursor"]))?;
    let filter = Filter::from_params(&p)?;
    let order = Order::from_params(&p)?;
    let limit = limit_from_params(&p)?;
    let fp = filter.fingerprint(&ws);
    let after = match p.get("cursor").filter(|c| !c.is_empty()) {
        Some(text) => Some(s.cursor_key.decode(text, order, fp)?),
        None => None,
    };
    let page = s
        .reader
        .list(&ws, &filter, order, limit, after.as_ref())
        .await?;
    let data: Vec<Value> = page.rows.iter().map(EventRow::list_json).collect();
    let next = page.next.map(|c| s.cursor_key.encode(&c));
    Ok(Json(json!({"data": data, "next_cursor": next})).into_response())
}

/// `GET /v1/events/{event_id}`.
pub async fn detail(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    id: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let ws = auth::workspace(&s, &headers).await?;
    Params::parse(raw.as_deref())?.only(&[])?;
    let Path(id) = id.map_err(|r| path_rejection("event_id", r))?;
    let uuid = Uuid::parse_str(&id).map_err(|_| Error::bad("event_id", "is not a UUID"))?;
    match s.reader.get(&ws, &uuid).await? {
        Some(row) => Ok(Json(row.detail_json()).into_response()),
        None => Err(Error::NotFound(format!("event_id: no event {uuid}"))),
    }
}

/// `GET /v1/event-counts`.
pub async fn counts(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let ws = auth::workspace(&s, &headers).await?;
    let p = Params::parse(raw.as_deref())?;
    p.only(FILTER_PARAMS)?;
    let filter = Filter::from_params(&p)?;
    let counts = s.reader.counts(&ws, &filter).await?;
    Ok(Json(json!({"counts": counts})).into_response())
}

#[derive(Clone, Copy)]
enum Format {
    Csv,
    Ndjson,
}

/// `GET /v1/export?format=csv|ndjson`: streamed, same filters, retention and order as the list.
pub async fn export(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let ws = auth::workspace(&s, &headers).await?;
    let p = Params::parse(raw.as_deref())?;
    p.only(&with(&["order", "format"]))?;
    let format = match p.get("format") {
        Some("csv") => Format::Csv,
        Some("ndjson") => Format::Ndjson,
        Some(_) => return Err(Error::bad("format", "must be csv or ndjson")),
        None => return Err(Error::bad("format", "required: csv or ndjson")),
    };
    let filter = Filter::from_params(&p)?;
    let order = Order::from_params(&p)?;
    let mut cursor = s.reader.export(&ws, &filter, order)?;
    // The first row (or the end) is read before answering, so an unreachable ClickHouse is a
    // 503 rather than a broken download.
    let first = tokio::time::timeout(s.query_timeout, cursor.next())
        .await
        .map_err(|_| Error::Unavailable("export: timed out".into()))?
        .map_err(|e| Error::clickhouse("export events", e))?;
    let stream = async_stream::stream! {
        let mut buf = Vec::with_capacity(EXPORT_CHUNK);
        if let Format::Csv = format {
            buf.extend_from_slice(CSV_COLUMNS.join(",").as_bytes());
            buf.push(b'\n');
        }
        let mut next = first;
        while let Some(row) = next {
            write_row(&mut buf, &row, format);
            if buf.len() >= EXPORT_CHUNK {
                yield Ok::<Bytes, std::io::Error>(Bytes::from(std::mem::take(&mut buf)));
            }
            next = match cursor.next().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "export aborted");
                    yield Err(std::io::Error::other(e));
                    return;
                }
            };
        }
        if !buf.is_empty() {
            yield Ok(Bytes::from(buf));
        }
    };
    let (ext, mime) = match format {
        Format::Csv => ("csv", "text/csv; charset=utf-8"),
        Format::Ndjson => ("ndjson", "application/x-ndjson"),
    };
    let safe: String = ws
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"audit-log-{safe}.{ext}\"");
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Appends one export line.
fn write_row(buf: &mut Vec<u8>, row: &EventRow, format: Format) {
    match format {
        Format::Ndjson => {
            if serde_json::to_writer(&mut *buf, &row.to_event()).is_ok() {
                buf.push(b'\n');
            }
        }
        Format::Csv => {
            let time = crate::filter::rfc3339_ms(row.time_ms);
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut *buf);
            let record: [&str; 17] = [
                &row.id,
                &time,
                &row.workspace_id,
                &row.bucket,
                &row.event,
                &row.actor_type,
                &row.actor_id,
                &row.actor_name,
                &row.targets,
                &row.description,
                &row.remote_ip,
                &row.user_agent,
                &row.outcome,
                &row.failure_reason,
                &row.correlation_id,
                &row.request,
                &row.response,
            ];
            if let Err(e) = w.write_record(record) {
                tracing::warn!(error = %e, "csv row");
            }
            let _ = w.flush();
        }
    }
}
