//! Workspace endpoints: the workspace's plan, list, detail, counts and export.

use std::sync::Arc;

use auditlog_event::AuditEvent;
use auditlog_store::events::{StoredEvent, CSV_COLUMNS};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::path_rejection;
use super::{auth, AppState};
use crate::filter::{limit_from_params, Filter, Order, FILTER_PARAMS};
use crate::params::Params;
use crate::reader::{detail_json, Summary};
use crate::{Error, Result};

/// Bytes buffered before an export chunk is sent.
const EXPORT_CHUNK: usize = 64 * 1024;

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
pub async fn workspace(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let ws = auth::workspace(&s, &headers).await?;
    Params::parse(raw.as_deref())?.only(&[])?;
    let plan = auditlog_store::plans::get_plan(s.reader.client(), &ws).await?;
    Ok(Json(plan_json(&plan)).into_response())
}

/// The list body.
#[derive(Serialize)]
struct ListBody<'a> {
    data: Vec<Summary<'a>>,
    next_cursor: Option<String>,
}

/// A 200 with a JSON body already serialized (so payload text reaches the client as stored).
fn json_bytes(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
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
    let events: Vec<AuditEvent> = page.rows.iter().map(StoredEvent::to_event).collect();
    let body = ListBody {
        data: events.iter().map(Summary::from).collect(),
        next_cursor: page.next.map(|c| s.cursor_key.encode(&c)),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| Error::Internal(format!("list: {e}")))?;
    Ok(json_bytes(bytes))
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
        Some(row) => Ok(json_bytes(detail_json(&row)?)),
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

#[derive(Debug, Clone, Copy)]
enum Format {
    /// CSV; `raw: false` neutralizes cells a spreadsheet would run as a formula.
    Csv {
        raw: bool,
    },
    Ndjson,
}

impl Format {
    /// `format` and `csv_raw` (`true` | `false`, only with `format=csv`; empty = absent).
    fn from_params(p: &Params) -> Result<Self> {
        let raw = match p.get("csv_raw") {
            None | Some("") => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(Error::bad("csv_raw", "must be true or false")),
        };
        match (p.get("format"), raw) {
            (Some("csv"), raw) => Ok(Format::Csv {
                raw: raw.unwrap_or(false),
            }),
            (Some("ndjson"), None) => Ok(Format::Ndjson),
            (Some("ndjson"), Some(_)) => Err(Error::bad("csv_raw", "applies to format=csv only")),
            (Some(_), _) => Err(Error::bad("format", "must be csv or ndjson")),
            (None, _) => Err(Error::bad("format", "required: csv or ndjson")),
        }
    }
}

/// Whether a spreadsheet would read `cell` as a formula (OWASP, "CSV
/// Injection": `=`, `+`, `-`, `@`, tab, carriage return).
fn formula_start(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// A CSV cell as written by default: one that would start a formula gets a leading `'`, so a
/// spreadsheet shows it as text (OWASP's advice); every other cell is as stored.
fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    if formula_start(cell) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// `GET /v1/export?format=csv|ndjson`: streamed, same filters, retention and order as the list.
pub async fn export(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let ws = auth::workspace(&s, &headers).await?;
    let p = Params::parse(raw.as_deref())?;
    p.only(&with(&["order", "format", "csv_raw"]))?;
    let format = Format::from_params(&p)?;
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
        if let Format::Csv { .. } = format {
            buf.extend_from_slice(CSV_COLUMNS.join(",").as_bytes());
            buf.push(b'\n');
        }
        let mut next = first;
        while let Some(row) = next {
            if let Err(e) = write_row(&mut buf, &row, format) {
                // Never skip a row silently: the download is cut, and the client sees a
                // truncated transfer.
                tracing::error!(error = %e, event_id = %row.id, "export row not written; export aborted");
                yield Err(std::io::Error::other(e));
                return;
            }
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
        Format::Csv { .. } => ("csv", "text/csv; charset=utf-8"),
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
fn write_row(
    buf: &mut Vec<u8>,
    row: &StoredEvent,
    format: Format,
) -> std::result::Result<(), String> {
    match format {
        Format::Ndjson => {
            let start = buf.len();
            serde_json::to_writer(&mut *buf, &row.to_event()).map_err(|e| e.to_string())?;
            // One event per line: the serializer escapes line breaks inside strings, so a raw
            // CR or LF here can only be whitespace between the tokens of a payload (stored as
            // sent). It becomes a space: the same JSON, the same length, and one event a line.
            for b in &mut buf[start..] {
                if matches!(*b, b'\n' | b'\r') {
                    *b = b' ';
                }
            }
            buf.push(b'\n');
        }
        Format::Csv { raw } => {
            let time = crate::filter::rfc3339_ms(row.time_ms);
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut *buf);
            let record = row.csv_record(&time);
            let cells = record.map(|c| if raw { c.into() } else { neutralize(c) });
            w.write_record(cells.iter().map(|c| c.as_bytes()))
                .map_err(|e| e.to_string())?;
            w.flush().map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralized_and_others_kept() {
        for cell in [
            "=1+2",
            "+1",
            "-0.0",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "=HYPERLINK(\"x\")",
        ] {
            assert_eq!(neutralize(cell), format!("'{cell}"), "{cell:?}");
        }
        for cell in [
            "",
            "a=1",
            " =1",
            "'=1",
            "{\"a\":-1}",
            "10.0.0.1",
            "\u{ff1d}1",
        ] {
            assert_eq!(neutralize(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn csv_raw_takes_true_or_false_with_csv_only() {
        let f = |q: &str| Format::from_params(&Params::parse(Some(q)).unwrap());
        assert!(matches!(f("format=csv"), Ok(Format::Csv { raw: false })));
        assert!(matches!(
            f("format=csv&csv_raw="),
            Ok(Format::Csv { raw: false })
        ));
        assert!(matches!(
            f("format=csv&csv_raw=false"),
            Ok(Format::Csv { raw: false })
        ));
        assert!(matches!(
            f("format=csv&csv_raw=true"),
            Ok(Format::Csv { raw: true })
        ));
        assert!(matches!(f("format=ndjson"), Ok(Format::Ndjson)));
        for q in [
            "format=csv&csv_raw=1",
            "format=csv&csv_raw=TRUE",
            "format=ndjson&csv_raw=true",
        ] {
            match f(q) {
                Err(Error::BadParameter { param, .. }) => assert_eq!(param, "csv_raw", "{q}"),
                other => panic!("{q}: {other:?}"),
            }
        }
    }
}
