//! Reads against ClickHouse: list pages, one event, counts, and the export stream.

use std::future::Future;
use std::time::Duration;

use auditlog_event::{Actor, AuditEvent, Context, EventType, Outcome, Target};
use auditlog_formats::Format;
use auditlog_store::events::StoredEvent;
use chrono::{DateTime, Utc};
use clickhouse::query::RowCursor;
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Dedup;
use crate::cursor::Cursor;
use crate::filter::{Filter, Order};
use crate::{sql, Error, Result};

/// The detail body: the full event plus `inserted_at`, as JSON bytes: the `json` format of
/// the feed and the streams (one implementation for both, in `auditlog_formats`). The
/// payloads are written as the text stored, byte for byte.
pub fn detail_json(row: &StoredEvent) -> Result<Vec<u8>> {
    auditlog_formats::render(Format::Json, &row.to_event(), row.inserted_ms)
        .map_err(|e| Error::Internal(format!("event detail: {e}")))
}

/// The keyset position after `row`.
fn cursor_after(row: &StoredEvent, order: Order, fingerprint: [u8; 8]) -> Cursor {
    Cursor {
        order,
        time_ms: row.time_ms,
        event_id: row.event_id(),
        fingerprint,
    }
}

/// An event as the list shows it: the wire format without `request` and `response`, borrowed
/// from the event and serialized directly (no `serde_json::Value` in between, which would
/// round numbers or fail on ones outside the `f64` range).
#[derive(Debug, Clone, Serialize)]
pub struct Summary<'a> {
    event_id: &'a Uuid,
    workspace_id: &'a str,
    bucket: &'a str,
    event: &'a EventType,
    #[serde(with = "auditlog_event::time_format")]
    time: DateTime<Utc>,
    actor: &'a Actor,
    targets: &'a [Target],
    description: &'a str,
    context: &'a Context,
    outcome: &'a Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: &'a Option<String>,
    version: u16,
}

impl<'a> From<&'a AuditEvent> for Summary<'a> {
    fn from(e: &'a AuditEvent) -> Self {
        // Listed field by field (no `..`): a field added to the event must be added here.
        let AuditEvent {
            event_id,
            workspace_id,
            bucket,
            event,
            time,
            actor,
            targets,
            description,
            context,
            request: _,
            response: _,
            outcome,
            correlation_id,
            version,
        } = e;
        Self {
            event_id,
            workspace_id,
            bucket,
            event,
            time: *time,
            actor,
            targets,
            description,
            context,
            outcome,
            correlation_id,
            version: *version,
        }
    }
}

/// Event count of one type.
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct EventCount {
    /// Event type.
    pub event: String,
    /// Events.
    pub count: u64,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    /// The rows, at most `limit`.
    pub rows: Vec<StoredEvent>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

/// Reads the events table of one database.
#[derive(Debug, Clone)]
pub struct Reader {
    client: Client,
    dedup: Dedup,
    timeout: Duration,
}

impl Reader {
    /// A reader on `client` (bound to the audit database).
    pub fn new(client: Client, dedup: Dedup, timeout: Duration) -> Self {
        let secs = timeout.as_secs().max(1).to_string();
        Self {
            client: client.with_setting("max_execution_time", secs),
            dedup,
            timeout,
        }
    }

    /// The ClickHouse client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs a read under the read deadline. A read that failed on the network (the server
    /// died under it: a replica killed, a restart) runs once more on a new connection, which the
    /// connector opens to a live server (`clickhouse.failover_urls`); reads are idempotent.
    pub(crate) async fn timed<T, F, Fut>(&self, what: &str, run: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = clickhouse::error::Result<T>>,
    {
        let attempts = async {
            match run().await {
                Err(clickhouse::error::Error::Network(_)) => run().await,
                done => done,
            }
        };
        match tokio::time::timeout(self.timeout, attempts).await {
            Ok(r) => r.map_err(|e| Error::clickhouse(what, e)),
            Err(_) => Err(Error::Unavailable(format!("{what}: timed out"))),
        }
    }

    /// One page of `ws`'s events matching `f`, after `after`.
    pub async fn list(
        &self,
        ws: &str,
        f: &Filter,
        order: Order,
        limit: u32,
        after: Option<&Cursor>,
    ) -> Result<Page> {
        let page = sql::PageQuery {
            ws,
            filter: f,
            order,
            limit,
            after,
        };
        let first = || {
            sql::list_first(&page, self.dedup)
                .query(&self.client)
                .fetch_all()
        };
        let mut rows: Vec<StoredEvent> = self.timed("list events", first).await?;
        if rows.len() <= limit as usize && self.dedup == Dedup::LimitBy {
            // The last page (or duplicates ate the key budget): the exact statement.
            let exact = || sql::list(&page, self.dedup).query(&self.client).fetch_all();
            rows = self.timed("list events", exact).await?;
        }
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|r| cursor_after(r, order, f.fingerprint(ws)))
        } else {
            None
        };
        Ok(Page { rows, next })
    }

    /// One event of `ws` by id, if it exists and is within retention.
    pub async fn get(&self, ws: &str, id: &Uuid) -> Result<Option<StoredEvent>> {
        let q = || sql::detail(ws, id).query(&self.client).fetch_optional();
        self.timed("read event", q).await
    }

    /// Counts per event type, sorted by type.
    pub async fn counts(&self, ws: &str, f: &Filter) -> Result<Vec<EventCount>> {
        let q = || {
            sql::counts(ws, f, self.dedup)
                .query(&self.client)
                .fetch_all()
        };
        self.timed("count events", q).await
    }

    /// Every matching event with payloads, in list order, as a stream of rows. Only the first
    /// row is awaited under the read deadline (by the handler); the stream itself runs to
    /// completion, so this statement lifts the connection's `max_execution_time` (which would
    /// make ClickHouse cut an export longer than `api.query_timeout`).
    pub fn export(&self, ws: &str, f: &Filter, order: Order) -> Result<RowCursor<StoredEvent>> {
        sql::export(ws, f, order, self.dedup)
            .query(&self.client)
            .with_setting("max_execution_time", "0")
            .fetch()
            .map_err(|e| Error::clickhouse("export events", e))
    }

    /// `SELECT 1`.
    pub async fn ping(&self) -> Result<()> {
        let q = || self.client.query("SELECT toUInt8(1)").fetch_one::<u8>();
        self.timed("ping", q).await.map(drop)
    }
}
