//! [`StreamStore`]: streams, their cursors, their delivery status and the stream workers'
//! heartbeats in ClickHouse (migration `0010_streams.sql`).
//!
//! Every table is a `ReplacingMergeTree`: a change writes a newer version of a row, reads take
//! the newest (`FINAL`, or `argMax` for cursors, whose newest is the highest
//! `(generation, updated_at)`). Changes to a stream (pause, resume, rotation, delete) read the
//! current version and write the next one; two admins changing one stream in the same
//! millisecond would race, one of them winning whole.
//!
//! Writes of the worker are batched by the caller: [`StreamStore::save_cursors`] and
//! [`StreamStore::save_statuses`] write any number of streams in ONE insert (never one insert
//! per delivery, which would make too many parts). Liveness uses the ClickHouse server's
//! clock only ([`StreamStore::heartbeat`], [`StreamStore::live_workers`]), so workers on hosts
//! with skewed clocks agree on who is alive.

use std::time::Duration;

use auditlog_store::{FeedPosition, FeedStart};
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::model::{
    CursorRecord, Desired, Destination, SigningSecret, State, Stream, StreamSpec, StreamStatus,
};
use crate::secret::{new_signing_secret, new_stream_id};
use crate::validate::check_spec;
use crate::{Error, Result};

/// Most signing secrets a stream keeps (the current one and those still signing).
pub const MAX_SECRETS: usize = 5;

const STREAMS: &str = "streams";
const CURSORS: &str = "stream_cursors";
const STATUS: &str = "stream_status";

/// A row of `streams`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
struct StreamRow {
    stream_id: String,
    workspace_id: String,
    name: String,
    destination: String,
    format: String,
    filter: String,
    desired: String,
    paused_reason: String,
    secrets: String,
    created_at: i64,
    updated_at: i64,
}

/// A row of `stream_cursors`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
struct CursorRow {
    stream_id: String,
    generation: u64,
    position: String,
    start: String,
    updated_at: i64,
}

/// A row of `stream_status`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
struct StatusRow {
    stream_id: String,
    state: String,
    last_error: String,
    last_error_at: Option<i64>,
    failing_since: Option<i64>,
    delivered_events: u64,
    delivered_batches: u64,
    failed_attempts: u64,
    redelivered_events: u64,
    lag_events: u64,
    lag_seconds: f64,
    worker_id: String,
    updated_at: i64,
}

/// The serde name of a unit enum value (`active`, `paused`, ...).
fn name_of<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn corrupt(what: &'static str, stream_id: &str) -> impl FnOnce(serde_json::Error) -> Error {
    let stream_id = stream_id.to_owned();
    move |e| Error::Corrupt {
        what,
        stream_id,
        reason: e.to_string(),
    }
}

fn json<T: Serialize>(v: &T) -> String {
    // The model's types serialize infallibly (strings, numbers, maps with string keys).
    serde_json::to_string(v).expect("stream model serializes")
}

impl StreamRow {
    fn of(s: &Stream) -> Self {
        Self {
            stream_id: s.stream_id.clone(),
            workspace_id: s.spec.workspace_id.clone(),
            name: s.spec.name.clone(),
            destination: json(&s.spec.destination),
            format: s.spec.format.as_str().to_owned(),
            filter: json(&s.spec.filter),
            desired: name_of(&s.desired),
            paused_reason: s.paused_reason.clone(),
            secrets: json(&s.secrets),
            created_at: s.created_at_ms,
            updated_at: s.updated_at_ms,
        }
    }

    fn stream(self) -> Result<Stream> {
        let id = self.stream_id.as_str();
        let format =
            auditlog_formats::Format::parse(&self.format).ok_or_else(|| Error::Corrupt {
                what: "format",
                stream_id: id.to_owned(),
                reason: format!("unknown format {:?}", self.format),
            })?;
        let desired: Desired = serde_json::from_value(serde_json::Value::String(self.desired))
            .map_err(corrupt("desired", id))?;
        Ok(Stream {
            spec: StreamSpec {
                workspace_id: self.workspace_id,
                name: self.name,
                destination: serde_json::from_str(&self.destination)
                    .map_err(corrupt("destination", id))?,
                format,
                filter: serde_json::from_str(&self.filter).map_err(corrupt("filter", id))?,
            },
            desired,
            paused_reason: self.paused_reason,
            secrets: serde_json::from_str(&self.secrets).map_err(corrupt("secrets", id))?,
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
            stream_id: self.stream_id,
        })
    }
}

impl CursorRow {
    fn of(c: &CursorRecord) -> Self {
        Self {
            stream_id: c.stream_id.clone(),
            generation: c.generation,
            position: c.position.as_ref().map(json).unwrap_or_default(),
            start: json(&c.start),
            updated_at: c.updated_at_ms,
        }
    }

    fn record(self) -> Result<CursorRecord> {
        let id = self.stream_id.as_str();
        let position = match self.position.as_str() {
            "" => None,
            p => Some(serde_json::from_str::<FeedPosition>(p).map_err(corrupt("position", id))?),
        };
        Ok(CursorRecord {
            start: serde_json::from_str(&self.start).map_err(corrupt("start", id))?,
            position,
            generation: self.generation,
            updated_at_ms: self.updated_at,
            stream_id: self.stream_id,
        })
    }
}

impl StatusRow {
    fn of(s: &StreamStatus) -> Self {
        Self {
            stream_id: s.stream_id.clone(),
            state: name_of(&s.state),
            last_error: s.last_error.clone(),
            last_error_at: s.last_error_at_ms,
            failing_since: s.failing_since_ms,
            delivered_events: s.delivered_events,
            delivered_batches: s.delivered_batches,
            failed_attempts: s.failed_attempts,
            redelivered_events: s.redelivered_events,
            lag_events: s.lag_events,
            lag_seconds: s.lag_seconds,
            worker_id: s.worker_id.clone(),
            updated_at: s.updated_at_ms,
        }
    }

    fn status(self) -> Result<StreamStatus> {
        let state: State = serde_json::from_value(serde_json::Value::String(self.state))
            .map_err(corrupt("state", &self.stream_id))?;
        Ok(StreamStatus {
            stream_id: self.stream_id,
            state,
            last_error: self.last_error,
            last_error_at_ms: self.last_error_at,
            failing_since_ms: self.failing_since,
            delivered_events: self.delivered_events,
            delivered_batches: self.delivered_batches,
            failed_attempts: self.failed_attempts,
            redelivered_events: self.redelivered_events,
            lag_events: self.lag_events,
            lag_seconds: self.lag_seconds,
            worker_id: self.worker_id,
            updated_at_ms: self.updated_at,
        })
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Streams and their state in ClickHouse, over a client of the audit database.
#[derive(Debug, Clone)]
pub struct StreamStore {
    client: Client,
}

impl StreamStore {
    /// A store reading and writing through `client` (bound to the audit database).
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Creates a stream from `spec` (checked by [`check_spec`]; the caller checks the filter,
    /// see [`crate::validate`]), starting at `start`. A webhook gets its first signing
    /// secret. `FeedStart::Now` is stored as the ClickHouse server's current time, so the
    /// stream delivers what is stored from its creation on, however late a worker picks it
    /// up.
    pub async fn create(&self, spec: StreamSpec, start: FeedStart) -> Result<Stream> {
        check_spec(&spec)?;
        let now = now_ms();
        let secrets = match spec.destination {
            Destination::Webhook { .. } => vec![SigningSecret {
                secret: new_signing_secret(),
                created_at_ms: now,
                expires_at_ms: None,
            }],
            _ => Vec::new(),
        };
        let stream = Stream {
            stream_id: new_stream_id(),
            spec,
            desired: Desired::Active,
            paused_reason: String::new(),
            secrets,
            created_at_ms: now,
            updated_at_ms: now,
        };
        // The cursor first: a cursor without its stream (a crash in between) is never read.
        let cursor = CursorRecord {
            stream_id: stream.stream_id.clone(),
            generation: 0,
            position: None,
            start: self.resolve(start).await?,
            updated_at_ms: now,
        };
        self.save_cursors(std::slice::from_ref(&cursor)).await?;
        self.write(&stream).await?;
        info!(
            stream_id = %stream.stream_id,
            workspace_id = %stream.spec.workspace_id,
            destination = destination_kind(&stream.spec.destination),
            "stream created"
        );
        Ok(stream)
    }

    /// The newest version of a stream, deleted ones included (`desired = deleted`).
    pub async fn get(&self, stream_id: &str) -> Result<Option<Stream>> {
        let row: Option<StreamRow> = self
            .client
            .query("SELECT ?fields FROM streams FINAL WHERE stream_id = ?")
            .bind(stream_id)
            .fetch_optional()
            .await
            .map_err(Error::clickhouse("read a stream"))?;
        row.map(StreamRow::stream).transpose()
    }

    /// Streams not deleted, of one workspace or of all, oldest first.
    pub async fn list(&self, workspace_id: Option<&str>) -> Result<Vec<Stream>> {
        let rows: Vec<StreamRow> = self
            .client
            .query(
                "SELECT * FROM (SELECT ?fields FROM streams FINAL) \
                 WHERE desired != 'deleted' AND (? = '' OR workspace_id = ?) \
                 ORDER BY created_at, stream_id",
            )
            .bind(workspace_id.unwrap_or(""))
            .bind(workspace_id.unwrap_or(""))
            .fetch_all()
            .await
            .map_err(Error::clickhouse("list streams"))?;
        rows.into_iter().map(StreamRow::stream).collect()
    }

    /// Every stream to deliver (`desired = active`), of every workspace: the worker's view.
    pub async fn all_active(&self) -> Result<Vec<Stream>> {
        let rows: Vec<StreamRow> = self
            .client
            .query(
                "SELECT * FROM (SELECT ?fields FROM streams FINAL) \
                 WHERE desired = 'active' ORDER BY stream_id",
            )
            .fetch_all()
            .await
            .map_err(Error::clickhouse("list active streams"))?;
        rows.into_iter().map(StreamRow::stream).collect()
    }

    /// Pauses, resumes or deletes a stream. `reason` is kept as `paused_reason` when pausing
    /// (the worker's automatic pause says why); resuming clears it. Deleting also empties
    /// the destination's credentials and the signing secrets. A deleted stream is
    /// [`Error::NotFound`].
    pub async fn set_desired(
        &self,
        stream_id: &str,
        desired: Desired,
        reason: &str,
    ) -> Result<Stream> {
        let mut s = self.current(stream_id).await?;
        s.desired = desired;
        s.paused_reason = match desired {
            Desired::Paused => reason.to_owned(),
            Desired::Active | Desired::Deleted => String::new(),
        };
        if desired == Desired::Deleted {
            s.spec.destination = s.spec.destination.without_credentials();
            s.secrets.clear();
        }
        s.updated_at_ms = now_ms().max(s.updated_at_ms + 1);
        self.write(&s).await?;
        info!(
            stream_id,
            desired = name_of(&desired),
            reason,
            "stream changed"
        );
        Ok(s)
    }

    /// Gives a webhook stream a new current signing secret; the previous one keeps signing
    /// (a second signature) for `old_valid_for`, so receivers can switch without losing a
    /// request. Secrets already expired are dropped; at most [`MAX_SECRETS`] are kept.
    pub async fn rotate_secret(&self, stream_id: &str, old_valid_for: Duration) -> Result<Stream> {
        let mut s = self.current(stream_id).await?;
        if !matches!(s.spec.destination, Destination::Webhook { .. }) {
            return Err(Error::invalid(
                "destination",
                "only webhook streams have a signing secret",
            ));
        }
        let now = now_ms().max(s.updated_at_ms + 1);
        let until =
            now.saturating_add(i64::try_from(old_valid_for.as_millis()).unwrap_or(i64::MAX));
        let mut secrets = vec![SigningSecret {
            secret: new_signing_secret(),
            created_at_ms: now,
            expires_at_ms: None,
        }];
        secrets.extend(s.secrets.iter().map(|k| SigningSecret {
            expires_at_ms: Some(k.expires_at_ms.map_or(until, |at| at.min(until))),
            ..k.clone()
        }));
        secrets.retain(|k| k.expires_at_ms.is_none_or(|at| at > now));
        secrets.truncate(MAX_SECRETS);
        s.secrets = secrets;
        s.updated_at_ms = now;
        self.write(&s).await?;
        info!(stream_id, old_valid_for = ?old_valid_for, "signing secret rotated");
        Ok(s)
    }

    /// Starts a stream over from `start` (inside retention): a cursor of the next generation
    /// without a position. The worker delivering the stream notices the new generation and
    /// starts over; positions it still writes for the old generation never win.
    pub async fn replay(&self, stream_id: &str, start: FeedStart) -> Result<CursorRecord> {
        self.current(stream_id).await?;
        let generation = self
            .cursors(&[stream_id.to_owned()])
            .await?
            .first()
            .map_or(0, |c| c.generation + 1);
        let record = CursorRecord {
            stream_id: stream_id.to_owned(),
            generation,
            position: None,
            start: self.resolve(start).await?,
            updated_at_ms: now_ms(),
        };
        self.save_cursors(std::slice::from_ref(&record)).await?;
        info!(stream_id, generation, start = ?record.start, "stream replay");
        Ok(record)
    }

    /// The newest cursor of each of `stream_ids` that has one.
    pub async fn cursors(&self, stream_ids: &[String]) -> Result<Vec<CursorRecord>> {
        if stream_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<CursorRow> = self
            .client
            .query(
                "SELECT stream_id, newest.1 AS generation, newest.2 AS position, \
                        newest.3 AS start, newest.4 AS updated_at \
                 FROM (SELECT stream_id, \
                              argMax((generation, position, start, updated_at), \
                                     (generation, updated_at)) AS newest \
                       FROM stream_cursors WHERE has(?, stream_id) GROUP BY stream_id) \
                 ORDER BY stream_id",
            )
            .bind(stream_ids)
            .fetch_all()
            .await
            .map_err(Error::clickhouse("read stream cursors"))?;
        rows.into_iter().map(CursorRow::record).collect()
    }

    /// Writes cursors of any number of streams in one insert.
    pub async fn save_cursors(&self, records: &[CursorRecord]) -> Result<()> {
        let rows: Vec<CursorRow> = records.iter().map(CursorRow::of).collect();
        self.insert(CURSORS, &rows, "write stream cursors").await
    }

    /// The newest status of each of `stream_ids` that has one.
    pub async fn statuses(&self, stream_ids: &[String]) -> Result<Vec<StreamStatus>> {
        if stream_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<StatusRow> = self
            .client
            .query("SELECT ?fields FROM stream_status FINAL WHERE has(?, stream_id) ORDER BY stream_id")
            .bind(stream_ids)
            .fetch_all()
            .await
            .map_err(Error::clickhouse("read stream status"))?;
        rows.into_iter().map(StatusRow::status).collect()
    }

    /// Writes statuses of any number of streams in one insert.
    pub async fn save_statuses(&self, statuses: &[StreamStatus]) -> Result<()> {
        let rows: Vec<StatusRow> = statuses.iter().map(StatusRow::of).collect();
        self.insert(STATUS, &rows, "write stream status").await
    }

    /// Records that `worker_id` is alive now (the ClickHouse server's `now64(3)`).
    pub async fn heartbeat(&self, worker_id: &str) -> Result<()> {
        self.client
            .query("INSERT INTO stream_workers (worker_id, heartbeat_at) VALUES (?, now64(3))")
            .bind(worker_id)
            .execute()
            .await
            .map_err(Error::clickhouse("write worker heartbeat"))
    }

    /// Workers whose latest heartbeat is at most `within` old by the server's clock, sorted.
    pub async fn live_workers(&self, within: Duration) -> Result<Vec<String>> {
        let within_ms = i64::try_from(within.as_millis()).unwrap_or(i64::MAX);
        self.client
            .query(
                "SELECT worker_id FROM stream_workers GROUP BY worker_id \
                 HAVING toUnixTimestamp64Milli(now64(3)) - toUnixTimestamp64Milli(max(heartbeat_at)) <= ? \
                 ORDER BY worker_id",
            )
            .bind(within_ms)
            .fetch_all()
            .await
            .map_err(Error::clickhouse("read live workers"))
    }

    /// The stream, unless it is unknown or deleted.
    async fn current(&self, stream_id: &str) -> Result<Stream> {
        match self.get(stream_id).await? {
            Some(s) if s.desired != Desired::Deleted => Ok(s),
            _ => Err(Error::NotFound(stream_id.to_owned())),
        }
    }

    async fn write(&self, s: &Stream) -> Result<()> {
        self.insert(STREAMS, &[StreamRow::of(s)], "write a stream")
            .await
    }

    /// `rows` into `table` in one insert (nothing for no rows).
    async fn insert<T>(&self, table: &str, rows: &[T], what: &'static str) -> Result<()>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert::<T>(table)
            .await
            .map_err(Error::clickhouse(what))?;
        for r in rows {
            insert.write(r).await.map_err(Error::clickhouse(what))?;
        }
        insert.end().await.map_err(Error::clickhouse(what))
    }

    /// `Now` as the server's current time (what `inserted_at` is compared with).
    async fn resolve(&self, start: FeedStart) -> Result<FeedStart> {
        if start != FeedStart::Now {
            return Ok(start);
        }
        let ms: i64 = self
            .client
            .query("SELECT toUnixTimestamp64Milli(now64(3))")
            .fetch_one()
            .await
            .map_err(Error::clickhouse("read the server time"))?;
        Ok(FeedStart::Time(ms))
    }
}

/// The destination's type, as logged and listed (`webhook`, `splunk_hec`, `datadog`, `s3`).
pub fn destination_kind(d: &Destination) -> &'static str {
    match d {
        Destination::Webhook { .. } => "webhook",
        Destination::SplunkHec { .. } => "splunk_hec",
        Destination::Datadog { .. } => "datadog",
        Destination::S3 { .. } => "s3",
    }
}
