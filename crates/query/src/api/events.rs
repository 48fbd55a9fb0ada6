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
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::path_rejection;
use super::extract::{Filtered, ReadQuery};
use super::openapi::{NotFound, V1Errors, EVENT};
use super::{auth, AppState};
use crate::filter::{
    limit_from_params, one_of, Filter, FilterParams, Order, OrderParam, PageParams,
};
use crate::params::Params;
use crate::reader::{detail_json, EventCount, Summary};
use crate::{Error, Result};

/// Bytes buffered before an export chunk is sent.
const EXPORT_CHUNK: usize = 64 * 1024;

/// A workspace's plan, as the workspace and admin endpoints answer it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WorkspacePlan, example = json!({"workspace_id": "ws_demo", "plan": "pro", "retention_days": 90}))]
pub struct WorkspacePlanBody {
    /// The workspace.
    pub workspace_id: String,
    /// `free`, `pro` or `enterprise`.
    #[schema(schema_with = plan_names)]
    pub plan: &'static str,
    /// Days kept; `null`: unlimited.
    #[schema(required = true)]
    pub retention_days: Option<u32>,
}

/// The plan names, as sent and accepted.
pub(crate) fn plan_names() -> utoipa::openapi::Object {
    use auditlog_store::Plan;
    one_of(&[Plan::Free, Plan::Pro, Plan::Enterprise { days: None }].map(Plan::name))
}

/// The plan body shared with the admin endpoints.
pub fn plan_json(p: &auditlog_store::WorkspacePlan) -> WorkspacePlanBody {
    WorkspacePlanBody {
        workspace_id: p.workspace_id.clone(),
        plan: p.plan.name(),
        retention_days: p.plan.retention_days(),
    }
}

/// The token's workspace, plan and retention.
///
/// Takes no parameters (any is a 400 naming it).
#[utoipa::path(
    get,
    path = "/v1/workspace",
    operation_id = "getWorkspace",
    tag = "workspace",
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The plan.", body = WorkspacePlanBody),
        V1Errors,
    )
)]
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
#[derive(Serialize, ToSchema)]
#[schema(as = EventPage)]
pub struct ListBody<'a> {
    /// The events, in the requested order, at most `limit`.
    #[schema(schema_with = event_list)]
    data: Vec<Summary<'a>>,
    /// Where the next page starts (pass it as `cursor`); `null`: this is the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

fn event_list() -> utoipa::openapi::Array {
    utoipa::openapi::Array::new(utoipa::openapi::Ref::from_schema_name(EVENT))
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

/// The parameters of the list.
#[derive(Debug)]
pub struct ListQuery {
    filter: Filter,
    order: Order,
    limit: u32,
}

impl ReadQuery for ListQuery {
    const EXTRA: &'static [&'static str] = &["order", "limit", "cursor"];

    fn parse(p: &Params) -> Result<Self> {
        Ok(Self {
            filter: Filter::from_params(p)?,
            order: Order::from_params(p)?,
            limit: limit_from_params(p)?,
        })
    }
}

/// Events, newest first, filtered, keyset-paginated.
///
/// Events are the wire format without `request` and `response`. Walking every page with
/// `next_cursor` returns every matching event once, also while events arrive.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "listEvents",
    tag = "events",
    params(FilterParams, OrderParam, PageParams),
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "A page.", body = ListBody<'static>),
        V1Errors,
    )
)]
pub async fn list(State(s): State<Arc<AppState>>, req: Filtered<ListQuery>) -> Result<Response> {
    let Filtered {
        workspace: ws,
        params: p,
        query: ListQuery {
            filter,
            order,
            limit,
        },
    } = req;
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

/// One event with its request and response payloads.
///
/// `request` and `response` are the payload text as stored, byte for byte. An id of another
/// workspace, beyond retention, or nonexistent is a 404 (the message repeats the id).
#[utoipa::path(
    get,
    path = "/v1/events/{event_id}",
    operation_id = "getEvent",
    tag = "events",
    params(("event_id" = String, Path, format = Uuid, description = "UUID of the event; anything else is a 400 naming `event_id`.")),
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The event.", body = ref("#/components/schemas/EventDetail")),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
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

/// The parameters of the counts: the filter only.
#[derive(Debug)]
pub struct CountsQuery(Filter);

impl ReadQuery for CountsQuery {
    const EXTRA: &'static [&'static str] = &[];

    fn parse(p: &Params) -> Result<Self> {
        Filter::from_params(p).map(Self)
    }
}

/// The counts body.
#[derive(Serialize, ToSchema)]
#[schema(as = EventCounts)]
pub struct CountsBody {
    /// One entry per event type, sorted by type.
    counts: Vec<EventCount>,
}

/// Events per type over the filters.
#[utoipa::path(
    get,
    path = "/v1/event-counts",
    operation_id = "countEvents",
    tag = "events",
    params(FilterParams),
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The counts.", body = CountsBody),
        V1Errors,
    )
)]
pub async fn counts(
    State(s): State<Arc<AppState>>,
    req: Filtered<CountsQuery>,
) -> Result<Response> {
    let counts = s.reader.counts(&req.workspace, &req.query.0).await?;
    Ok(Json(CountsBody { counts }).into_response())
}

#[derive(Debug, Clone, Copy)]
enum Format {
    /// CSV; `raw: false` neutralizes cells a spreadsheet would run as a formula.
    Csv {
        raw: bool,
    },
    Ndjson,
    /// The verifiable export of the workspace's log (`api::log_export`).
    Log,
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
            (Some("log"), None) => Ok(Format::Log),
            (Some("ndjson" | "log"), Some(_)) => {
                Err(Error::bad("csv_raw", "applies to format=csv only"))
            }
            (Some(_), _) => Err(Error::bad("format", "must be csv, ndjson or log")),
            (None, _) => Err(Error::bad("format", "required: csv, ndjson or log")),
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

/// The export's own parameters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv`, `ndjson` or `log` (the verifiable export of the workspace's log: a header line,
    /// one line per leaf up to the latest checkpoint with its stored event or `null`, then the
    /// stored events no leaf covers; docs/integrity.md). `log` takes no filter, `order` or
    /// `csv_raw` (400 naming it): the log is exported whole.
    #[param(inline)]
    pub format: ExportFormat,
    /// CSV only. `false` (default): a cell starting with `=`, `+`, `-`, `@`, tab or carriage
    /// return is written with a leading `'` so spreadsheets do not run it as a formula (OWASP
    /// CSV injection). `true`: every cell exactly as stored. Another value, or `csv_raw` with
    /// `format=ndjson`, is a 400 naming `csv_raw`.
    #[param(default = json!(false))]
    pub csv_raw: Option<bool>,
}

/// The `format` values of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// CSV, RFC 4180.
    Csv,
    /// One JSON event per line.
    Ndjson,
    /// The log's verifiable export (NDJSON lines `header`, `leaf`, `unlogged`).
    Log,
}

/// The parameters of the export, parsed format first.
#[derive(Debug)]
pub struct ExportQuery {
    format: Format,
    filter: Filter,
    order: Order,
}

impl ReadQuery for ExportQuery {
    const EXTRA: &'static [&'static str] = &["order", "format", "csv_raw"];

    fn parse(p: &Params) -> Result<Self> {
        let format = Format::from_params(p)?;
        if let Format::Log = format {
            // The log is exported whole, in leaf order.
            for name in Self::accepted() {
                if name != "format" && p.get(name).is_some_and(|v| !v.is_empty()) {
                    return Err(Error::bad(
                        name,
                        "not accepted with format=log: the log is exported whole, in leaf order",
                    ));
                }
            }
        }
        Ok(Self {
            format,
            filter: Filter::from_params(p)?,
            order: Order::from_params(p)?,
        })
    }
}

/// Streamed download of every matching event (same filters, order and retention as the list).
///
/// An attachment `audit-log-<workspace>.<csv|ndjson>`. NDJSON lines are full events with the
/// payloads as stored, byte for byte, except that a line break between the tokens of a
/// payload (JSON whitespace) is written as a space, so each event stays on one line. CSV has
/// the columns `event_id,time,workspace_id,bucket,event,actor_type,actor_id,actor_name,targets,description,remote_ip,user_agent,outcome,failure_reason,correlation_id,request,response`
/// (RFC 4180 quoting; targets, request and response are JSON text). The first row is read
/// before the 200 is sent, so an unreachable ClickHouse is a 503; a failure later aborts the
/// connection (the client sees a truncated transfer).
#[utoipa::path(
    get,
    path = "/v1/export",
    operation_id = "exportEvents",
    tag = "events",
    params(FilterParams, OrderParam, ExportParams),
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The download (`Content-Disposition: attachment`).",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"audit-log-<workspace>.<csv|ndjson>\"`")),
            content(
                (String = "text/csv"),
                (String = "application/x-ndjson"),
            )
        ),
        V1Errors,
    )
)]
pub async fn export(
    State(s): State<Arc<AppState>>,
    req: Filtered<ExportQuery>,
) -> Result<Response> {
    let Filtered {
        workspace: ws,
        query: ExportQuery {
            format,
            filter,
            order,
        },
        ..
    } = req;
    if let Format::Log = format {
        return super::log_export::export(&s, ws).await;
    }
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
        Format::Ndjson | Format::Log => ("ndjson", "application/x-ndjson"),
    };
    Ok(attachment(Body::from_stream(stream), &ws, ext, mime))
}

/// A download response: `Content-Type` and `Content-Disposition: attachment;
/// filename="audit-log-<workspace>.<ext>"` (the workspace's characters outside
/// `[A-Za-z0-9._-]` as `_`).
pub(crate) fn attachment(body: Body, ws: &str, ext: &str, mime: &'static str) -> Response {
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
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// Appends one export line.
fn write_row(
    buf: &mut Vec<u8>,
    row: &StoredEvent,
    format: Format,
) -> std::result::Result<(), String> {
    match format {
        Format::Ndjson | Format::Log => {
            // One event per line (`export_json`: a raw CR or LF between a payload's tokens
            // becomes a space; the same JSON, the same length).
            buf.extend_from_slice(&row.export_json().map_err(|e| e.to_string())?);
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
    fn the_documented_formats_are_the_parsed_ones() {
        for f in [ExportFormat::Csv, ExportFormat::Ndjson, ExportFormat::Log] {
            let name = serde_json::to_value(f).unwrap();
            let q = format!("format={}", name.as_str().unwrap());
            assert!(
                Format::from_params(&Params::parse(Some(&q)).unwrap()).is_ok(),
                "{q}"
            );
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
        assert!(matches!(f("format=log"), Ok(Format::Log)));
        for q in [
            "format=csv&csv_raw=1",
            "format=csv&csv_raw=TRUE",
            "format=ndjson&csv_raw=true",
            "format=log&csv_raw=false",
        ] {
            match f(q) {
                Err(Error::BadParameter { param, .. }) => assert_eq!(param, "csv_raw", "{q}"),
                other => panic!("{q}: {other:?}"),
            }
        }
    }
}
