//! Destinations: where a stream's batches go. Each kind is one file with one job (build the
//! request, send it, say whether it was acknowledged); the worker knows them only through
//! [`Destination`]. Every failure is retried (at least once never skips an event); a failure
//! only says why and, when the destination said so, when to try again.

use std::time::Duration;

use auditlog_streams::Stream;
use futures::future::BoxFuture;
use uuid::Uuid;

pub mod compress;
pub mod datadog;
pub mod s3;
pub mod splunk;
pub mod webhook;

/// One event of a batch, rendered in the stream's format.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The event id (receivers drop duplicates by it).
    pub event_id: Uuid,
    /// Event time, epoch ms.
    pub time_ms: i64,
    /// When it was stored (became visible), epoch ms.
    pub inserted_ms: i64,
    /// Kafka partition of its feed position.
    pub partition: i32,
    /// Kafka offset of its feed position.
    pub offset: i64,
    /// `auditlog_formats::render` output: one JSON document.
    pub json: Vec<u8>,
}

/// Consecutive feed items of one stream, delivered together.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The stream.
    pub stream_id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// Deterministic: `{stream_id}.{generation}.{partition}-{offset}` of the first event. A
    /// batch re-formed after a crash from the same position has the same id (the webhook's
    /// `webhook-id`, the S3 object key), so a retry overwrites rather than duplicates.
    pub batch_id: String,
    /// The events, in feed order.
    pub events: Vec<Rendered>,
}

impl Batch {
    /// The id of a batch that starts at `(partition, offset)` in `generation`.
    pub fn id(stream_id: &str, generation: u64, partition: i32, offset: i64) -> String {
        format!("{stream_id}.{generation}.{partition}-{offset}")
    }

    /// Bytes of the rendered events.
    pub fn bytes(&self) -> usize {
        self.events.iter().map(|e| e.json.len()).sum()
    }
}

/// Why a delivery was not acknowledged. Always retried, with capped exponential backoff and
/// jitter, or after `retry_after` when the destination said when.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Failure {
    /// What happened, for the stream's `last_error` (no secrets in it).
    pub reason: String,
    /// `Retry-After` (or the destination's equivalent).
    pub retry_after: Option<Duration>,
}

/// How the worker cuts batches for a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most events in one batch.
    pub max_events: usize,
    /// Most rendered bytes in one batch.
    pub max_bytes: usize,
    /// Longest a partial batch waits for more events (0: send what is there). S3 windows use it.
    pub max_wait: Duration,
}

/// A destination of one stream.
pub trait Destination: Send + Sync {
    /// How to cut batches for it.
    fn limits(&self) -> Limits;
    /// Deliver `batch`; `Ok` only once the destination acknowledged it.
    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), Failure>>;
}

/// The destination of `stream`, sending through `http`.
pub fn build(stream: &Stream, http: &reqwest::Client) -> Box<dyn Destination> {
    use auditlog_streams::Destination as D;
    match &stream.spec.destination {
        D::Webhook { url } => Box::new(webhook::Webhook::new(stream, url, http)),
        D::SplunkHec { .. } => Box::new(splunk::SplunkHec::new(stream, http.clone())),
        D::Datadog { .. } => Box::new(datadog::Datadog::new(stream, http.clone())),
        D::S3 { .. } => Box::new(s3::S3::new(stream, http.clone())),
    }
}
