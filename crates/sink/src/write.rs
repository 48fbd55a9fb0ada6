//! Write: batches into ClickHouse. The [`Writer`] trait is the seam (the real ClickHouse client,
//! or a fake that fails at an exact row in component tests); [`classify`] tells retryable
//! failures from rows ClickHouse refuses (from the store's classifier); [`insert_isolating`]
//! splits a refused batch in halves until the bad rows are alone, inserts the rest and hands
//! the bad ones back.

use std::future::Future;
use std::time::Duration;

use auditlog_store::events::{self, EventRow};
use auditlog_store::Class;
use clickhouse::error::Error as ChError;
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use crate::batch::Batch;

/// What the caller should do about a failed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// ClickHouse is down, overloaded, or misconfigured in a way an operator fixes
    /// (missing table, permissions): back off and try the same write again.
    Retryable,
    /// ClickHouse refused the data itself: some row in the write is bad. Split and isolate.
    BadData,
}

/// A failed write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WriteError {
    /// What to do about it.
    pub kind: ErrorKind,
    /// The error text.
    pub message: String,
}

impl WriteError {
    /// A retryable error.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Retryable,
            message: message.into(),
        }
    }
}

impl From<ChError> for WriteError {
    fn from(e: ChError) -> Self {
        Self {
            kind: classify(&e),
            message: e.to_string(),
        }
    }
}

/// Tells a write that should be retried as is from one that a bad row broke
/// ([`auditlog_store::classify`]).
///
/// Network errors, timeouts, overload (`TOO_MANY_PARTS`, memory limits), unknown tables and
/// every error not known to be about the data are retryable: when unsure, keep the data and
/// wait (the partition is paused meanwhile). Only errors that name the data (parse, type,
/// constraint codes, or the client failing to serialize one row) split the batch.
pub fn classify(e: &ChError) -> ErrorKind {
    match auditlog_store::classify(e) {
        Class::BadData => ErrorKind::BadData,
        Class::Transient | Class::Permanent => ErrorKind::Retryable,
    }
}

/// Where batches go.
pub trait Writer: Send + Sync {
    /// Inserts `rows` in one INSERT carrying `token` as its deduplication token.
    fn insert(
        &self,
        rows: &[EventRow],
        token: &str,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Records that the range `first..=last` of `partition` is (about to be) inserted as one batch.
    fn record_cut(
        &self,
        partition: i32,
        first: i64,
        last: i64,
        rows: usize,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// The recorded ranges of `partition` ending at or after `from`, oldest first.
    fn recorded_cuts(
        &self,
        partition: i32,
        from: i64,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>, WriteError>> + Send;
}

/// The real writer: RowBinary inserts with the `clickhouse` crate.
#[derive(Clone)]
pub struct ClickHouseWriter {
    client: Client,
    topic: String,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct CutRow {
    topic: String,
    partition: i32,
    first_offset: i64,
    last_offset: i64,
    rows: u32,
}

#[derive(Debug, Row, Deserialize)]
struct CutRange {
    first_offset: i64,
    last_offset: i64,
}

impl ClickHouseWriter {
    /// A writer for rows of `topic` through `client` (bound to the audit database).
    pub fn new(client: Client, topic: impl Into<String>) -> Self {
        Self {
            client,
            topic: topic.into(),
        }
    }
}

impl Writer for ClickHouseWriter {
    async fn insert(&self, rows: &[EventRow], token: &str) -> Result<(), WriteError> {
        events::insert(&self.client, rows, token).await?;
        Ok(())
    }

    async fn record_cut(
        &self,
        partition: i32,
        first: i64,
        last: i64,
        rows: usize,
    ) -> Result<(), WriteError> {
        let mut insert = self
            .client
            .insert::<CutRow>("sink_batches")
            .await?
            .with_timeouts(Some(Duration::from_secs(10)), Some(Duration::from_secs(30)));
        insert
            .write(&CutRow {
                topic: self.topic.clone(),
                partition,
                first_offset: first,
                last_offset: last,
                rows: u32::try_from(rows).unwrap_or(u32::MAX),
            })
            .await?;
        insert.end().await?;
        Ok(())
    }

    async fn recorded_cuts(
        &self,
        partition: i32,
        from: i64,
    ) -> Result<Vec<(i64, i64)>, WriteError> {
        let rows: Vec<CutRange> = self
            .client
            .query(
                "SELECT first_offset, last_offset FROM sink_batches FINAL \
                 WHERE topic = ? AND partition = ? AND last_offset >= ? \
                 ORDER BY first_offset LIMIT 100000",
            )
            .bind(&self.topic)
            .bind(partition)
            .bind(from)
            .fetch_all()
            .await
            .map_err(|e| WriteError::retryable(e.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.first_offset, r.last_offset))
            .collect())
    }
}

/// The deduplication token of an insert: `topic:partition:first-last` for the batch covering
/// offsets `first..=last`, plus `/part:a-b` when the insert holds only the rows of offsets
/// `a..=b` (a part of a split batch). Derived from offsets only, so a replay that cuts and
/// splits the same way inserts with the same tokens.
pub fn dedup_token(
    topic: &str,
    partition: i32,
    (first, last): (i64, i64),
    part: Option<(i64, i64)>,
) -> String {
    match part {
        None => format!("{topic}:{partition}:{first}-{last}"),
        Some((a, b)) => format!("{topic}:{partition}:{first}-{last}/part:{a}-{b}"),
    }
}

/// A row ClickHouse refused.
#[derive(Debug)]
pub struct Refused {
    /// Kafka offset of its message.
    pub offset: i64,
    /// ClickHouse's error.
    pub message: String,
}

/// Inserts a batch; when ClickHouse refuses it for bad data, splits it in halves (each half
/// with its own token, derived from its offsets) until the refused rows are alone.
/// Returns the refused rows; a retryable error aborts (retrying the whole call is safe: the
/// parts already inserted are deduplicated by their tokens, and the split is deterministic).
pub async fn insert_isolating<W: Writer>(
    writer: &W,
    topic: &str,
    partition: i32,
    batch: &Batch,
) -> Result<Vec<Refused>, WriteError> {
    let mut refused = Vec::new();
    let mut todo = vec![(0usize, batch.rows.len(), true)];
    while let Some((lo, hi, whole)) = todo.pop() {
        if lo >= hi {
            continue;
        }
        let rows = &batch.rows[lo..hi];
        let part = (!whole).then(|| (rows[0].kafka_offset, rows[rows.len() - 1].kafka_offset));
        let token = dedup_token(topic, partition, (batch.first, batch.last), part);
        match writer.insert(rows, &token).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::Retryable => return Err(e),
            Err(e) if hi - lo == 1 => refused.push(Refused {
                offset: batch.rows[lo].kafka_offset,
                message: e.message,
            }),
            Err(_) => {
                let mid = lo + (hi - lo) / 2;
                // Popped in offset order: first half first.
                todo.push((mid, hi, false));
                todo.push((lo, mid, false));
            }
        }
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> ChError {
        ChError::BadResponse(text.into())
    }

    #[test]
    fn network_and_timeouts_are_retryable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            classify(&ChError::Network(Box::new(io))),
            ErrorKind::Retryable
        );
        assert_eq!(classify(&ChError::TimedOut), ErrorKind::Retryable);
    }

    #[test]
    fn overload_and_missing_schema_are_retryable() {
        for text in [
            "Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)",
            "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)",
            "Code: 60. DB::Exception: Table db.events does not exist. (UNKNOWN_TABLE)",
            "Code: 202. DB::Exception: Too many simultaneous queries. (TOO_MANY_SIMULTANEOUS_QUERIES)",
            "something without a code",
        ] {
            assert_eq!(classify(&bad(text)), ErrorKind::Retryable, "{text}");
        }
    }

    #[test]
    fn data_errors_split_the_batch() {
        for text in [
            "Code: 469. DB::Exception: Constraint `c` for table events is violated. (VIOLATED_CONSTRAINT)",
            "Code: 27. DB::Exception: Cannot parse input. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
            "Code: 131. DB::Exception: Too large string size. (TOO_LARGE_STRING_SIZE)",
        ] {
            assert_eq!(classify(&bad(text)), ErrorKind::BadData, "{text}");
        }
        assert_eq!(
            classify(&ChError::Custom("bad value".into())),
            ErrorKind::BadData
        );
    }

    #[test]
    fn tokens_name_the_range_and_the_part() {
        assert_eq!(dedup_token("t", 3, (10, 20), None), "t:3:10-20");
        assert_eq!(
            dedup_token("t", 3, (10, 20), Some((10, 14))),
            "t:3:10-20/part:10-14"
        );
    }
}
