//! `GET /v1/feed`: the workspace's events in the order they became visible, by opaque cursor,
//! with an optional long poll (`wait`) and a choice of item format. The reads are
//! [`crate::feed`]'s; the response is built as bytes (payloads byte for byte).

use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_formats::Format;
use auditlog_store::events::StoredEvent;
use auditlog_store::feed::FeedStart;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Filtered, ReadQuery};
use super::openapi::V1Errors;
use super::AppState;
use crate::feed::cursor::FeedCursor;
use crate::filter::{
    limit_from_params, parse_time, rfc3339_ms, Filter, FilterParams, FILTER_PARAMS,
};
use crate::params::Params;
use crate::reader::detail_json;
use crate::{Error, Result};

/// Longest `wait`, seconds.
pub const MAX_WAIT_S: u64 = 30;
/// The longest `wait`: the request deadline of the feed is `api.query_timeout` plus this.
pub const MAX_WAIT: Duration = Duration::from_secs(MAX_WAIT_S);
/// Default page size of the feed.
pub const DEFAULT_LIMIT: u32 = 100;
/// Filter parameters the feed does not take: it is ordered by ingestion, not event time.
pub const NOT_IN_FEED: [&str; 2] = ["since", "until"];
const DAY_MS: i64 = 86_400_000;

/// Events returned by the feed.
pub const EVENTS: &str = "auditlog_feed_events_total";
/// Long polls that waited, by `result` (`woken`: events came; `timed_out`: the wait ended).
pub const WAITS: &str = "auditlog_feed_waits_total";

/// `# HELP` text of the feed's metrics.
pub fn describe() {
    metrics::describe_counter!(EVENTS, "Events returned by GET /v1/feed");
    metrics::describe_counter!(
        WAITS,
        "GET /v1/feed requests that waited for new events, by result (woken, timed_out)"
    );
}

/// The list's filter parameters but `since` and `until` (documented from [`FilterParams`]).
pub struct FeedFilterParams;

impl IntoParams for FeedFilterParams {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        FilterParams::into_params(parameter_in)
            .into_iter()
            .filter(|p| !NOT_IN_FEED.contains(&p.name.as_str()))
            .collect()
    }
}

/// The feed's own parameters, as documented; [`FeedQuery`] parses them.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// `next_cursor` of the previous response (same filters). Absent: a new feed from `start`.
    /// A cursor issued longer ago than the workspace's retention is a 410 `cursor_expired`.
    pub cursor: Option<String>,
    /// Events per response, 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000, default = json!(DEFAULT_LIMIT))]
    pub limit: Option<u32>,
    /// Where a new feed starts, only without `cursor`: `beginning` (the default: everything
    /// inside retention), `now` (only events that become visible from now on), or a time
    /// (RFC 3339 or epoch milliseconds): the events stored at or after it, whatever their
    /// event time.
    pub start: Option<String>,
    /// Seconds to hold the request when nothing is new, 0..=30, default 0: it answers as soon
    /// as events arrive (within about a second of them becoming visible), or with no events
    /// when the wait ends.
    #[param(minimum = 0, maximum = 30, default = json!(0))]
    pub wait: Option<u32>,
    /// Format of each item: `json` (the default: the event with its payloads and
    /// `inserted_at`, as `GET /v1/events/{event_id}`), `ocsf` or `ecs` (docs/formats.md).
    #[param(inline)]
    pub format: Option<Format>,
}

/// The parsed parameters of the feed.
#[derive(Debug)]
pub struct FeedQuery {
    filter: Filter,
    limit: u32,
    start: Option<FeedStart>,
    wait: Duration,
    format: Format,
}

impl ReadQuery for FeedQuery {
    const EXTRA: &'static [&'static str] = &["cursor", "limit", "start", "wait", "format"];

    fn accepted() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = FILTER_PARAMS
            .iter()
            .copied()
            .filter(|p| !NOT_IN_FEED.contains(p))
            .collect();
        v.extend_from_slice(Self::EXTRA);
        v
    }

    fn parse(p: &Params) -> Result<Self> {
        let filter = Filter::from_params(p)?;
        let limit = match p.get("limit").filter(|v| !v.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(_) => limit_from_params(p)?,
        };
        let start = match p.get("start").filter(|v| !v.is_empty()) {
            None => None,
            Some("beginning") => Some(FeedStart::Beginning),
            Some("now") => Some(FeedStart::Now),
            Some(v) => Some(FeedStart::Time(parse_time("start", v).map_err(|_| {
                Error::bad(
                    "start",
                    "is not beginning, now, or a time (RFC 3339 like 2026-01-31T12:00:00Z, or epoch milliseconds, 1900..2300)",
                )
            })?)),
        };
        let wait = match p.get("wait").filter(|v| !v.is_empty()) {
            None => Duration::ZERO,
            Some(v) => match v.parse::<u64>() {
                Ok(s) if s <= MAX_WAIT_S => Duration::from_secs(s),
                _ => {
                    return Err(Error::bad(
                        "wait",
                        format!("is not a whole number of seconds in 0..={MAX_WAIT_S}"),
                    ))
                }
            },
        };
        let format = match p.get("format").filter(|v| !v.is_empty()) {
            None => Format::Json,
            Some(v) => Format::parse(v).ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
                Error::bad("format", format!("is not one of {}", names.join(", ")))
            })?,
        };
        if start.is_some() && p.get("cursor").is_some_and(|c| !c.is_empty()) {
            return Err(Error::bad(
                "start",
                "cannot be combined with cursor: a cursor continues a feed, start begins a new one",
            ));
        }
        Ok(Self {
            filter,
            limit,
            start,
            wait,
            format,
        })
    }
}

/// The feed body (documentation: the handler writes the bytes itself).
#[derive(Serialize, ToSchema)]
#[schema(as = FeedPage)]
pub struct FeedBody {
    /// The events, in the order they became visible (per Kafka partition), at most `limit`,
    /// each in the requested `format` (`json`: an `EventDetail`).
    #[schema(schema_with = feed_items)]
    data: Vec<()>,
    /// Where the next request continues (pass it as `cursor`); always present: a feed never
    /// ends.
    next_cursor: String,
}

fn feed_items() -> utoipa::openapi::Array {
    utoipa::openapi::Array::new(
        utoipa::openapi::ObjectBuilder::new()
            .description(Some(
                "An event as `EventDetail` (format `json`), an OCSF event (`ocsf`) or an ECS document (`ecs`).",
            ))
            .build(),
    )
}

/// The workspace's events in the order they became visible, by cursor.
///
/// Following `next_cursor` from any start returns every event exactly once, in ingestion
/// order per Kafka partition, never skipping one that becomes visible later whatever its
/// event time (docs/api.md, "Feed"). With `wait`, a caught-up poller gets new events within
/// about a second of them becoming visible.
#[utoipa::path(
    get,
    path = "/v1/feed",
    operation_id = "feed",
    tag = "feed",
    params(FeedFilterParams, FeedParams),
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The next events (possibly none) and the cursor after them.", body = FeedBody),
        (status = 410, response = super::openapi::Gone),
        V1Errors,
    )
)]
pub async fn feed(State(s): State<Arc<AppState>>, req: Filtered<FeedQuery>) -> Result<Response> {
    let Filtered {
        workspace: ws,
        params: p,
        query: q,
    } = req;
    let fingerprint = q.filter.fingerprint(&ws);
    let mut pos = match p.get("cursor").filter(|c| !c.is_empty()) {
        Some(text) => {
            let c = FeedCursor::decode(&s.cursor_key, text, fingerprint)?;
            expiry(&s, &ws, c.issued_ms).await?;
            c.position
        }
        None => {
            s.reader
                .feed_start(&ws, q.start.unwrap_or(FeedStart::Beginning))
                .await?
        }
    };
    let deadline = Instant::now() + q.wait;
    let mut waited = false;
    let items = loop {
        let page = s.reader.feed_page(&ws, &q.filter, &pos, q.limit).await?;
        pos = page.next;
        if !page.items.is_empty() {
            break page.items;
        }
        if !page.caught_up {
            // Every row of this page was a duplicate: read on.
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Vec::new();
        }
        waited = true;
        if !s.notifier.changed_since(&ws, &pos, left).await {
            break Vec::new();
        }
    };
    if waited {
        let result = if items.is_empty() {
            "timed_out"
        } else {
            "woken"
        };
        metrics::counter!(WAITS, "result" => result).increment(1);
    }
    metrics::counter!(EVENTS).increment(items.len() as u64);
    let cursor = FeedCursor {
        position: pos,
        fingerprint,
        issued_ms: chrono::Utc::now().timestamp_millis(),
    }
    .encode(&s.cursor_key)?;
    let mut body = Vec::with_capacity(256 + items.len() * 1024);
    body.extend_from_slice(b"{\"data\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&item_json(q.format, &item.event)?);
    }
    body.extend_from_slice(b"],\"next_cursor\":");
    serde_json::to_writer(&mut body, &cursor)
        .map_err(|e| Error::Internal(format!("feed cursor: {e}")))?;
    body.push(b'}');
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// One item: `json` is the detail body of `GET /v1/events/{event_id}` (the same bytes), the
/// other formats [`auditlog_formats::render`]'s.
fn item_json(format: Format, row: &StoredEvent) -> Result<Vec<u8>> {
    match format {
        Format::Json => detail_json(row),
        other => auditlog_formats::render(other, &row.to_event(), row.inserted_ms)
            .map_err(|e| Error::Internal(format!("feed item {}: {e}", row.id))),
    }
}

/// A cursor issued longer ago than the workspace's current retention is expired: rows it had
/// still to deliver may have been deleted. Unlimited retention never expires.
async fn expiry(s: &AppState, ws: &str, issued_ms: i64) -> Result<()> {
    let plan = auditlog_store::plans::get_plan(s.reader.client(), ws).await?;
    let Some(days) = plan.plan.retention_days() else {
        return Ok(());
    };
    if issued_ms.saturating_add(i64::from(days) * DAY_MS) < chrono::Utc::now().timestamp_millis() {
        return Err(Error::CursorExpired(format!(
            "issued {}, longer ago than the workspace's retention ({days} days); start again with start=beginning, start=now or start=<time>",
            rfc3339_ms(issued_ms)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<FeedQuery> {
        FeedQuery::parse(&Params::parse(Some(q))?)
    }

    fn param_of(e: Error) -> String {
        match e {
            Error::BadParameter { param, .. } => param,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parameters_parse_and_errors_name_them() {
        let q = parse("").unwrap();
        assert_eq!(
            (q.limit, q.start, q.wait, q.format),
            (DEFAULT_LIMIT, None, Duration::ZERO, Format::Json)
        );
        let q = parse("limit=1000&start=now&wait=30&format=ocsf&event=key.*").unwrap();
        assert_eq!(
            (q.limit, q.start, q.wait, q.format),
            (1000, Some(FeedStart::Now), MAX_WAIT, Format::Ocsf)
        );
        assert_eq!(
            parse("start=1767225600000").unwrap().start,
            Some(FeedStart::Time(1_767_225_600_000))
        );
        assert_eq!(
            parse("start=2026-01-01T00:00:00Z").unwrap().start,
            Some(FeedStart::Time(1_767_225_600_000))
        );
        assert_eq!(
            parse("start=beginning").unwrap().start,
            Some(FeedStart::Beginning)
        );
        for (q, name) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("wait=31", "wait"),
            ("wait=-1", "wait"),
            ("wait=1.5", "wait"),
            ("start=yesterday", "start"),
            ("format=xml", "format"),
            ("start=now&cursor=abc", "start"),
            ("event=bad", "event"),
        ] {
            assert_eq!(param_of(parse(q).unwrap_err()), name, "{q}");
        }
        let e = parse("start=now&cursor=abc").unwrap_err().to_string();
        assert!(e.contains("cursor"), "{e}");
    }

    #[test]
    fn since_and_until_are_not_feed_parameters() {
        let accepted = FeedQuery::accepted();
        for p in NOT_IN_FEED {
            assert!(!accepted.contains(&p));
        }
        let documented: Vec<String> = FeedFilterParams::into_params(|| None)
            .into_iter()
            .chain(FeedParams::into_params(|| None))
            .map(|p| p.name)
            .collect();
        assert_eq!(documented, accepted);
    }
}
