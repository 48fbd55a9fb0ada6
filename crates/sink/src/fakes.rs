//! Test doubles of the seams the pipeline and the write stage use: a writer with a batch
//! journal, partitions, the dead-letter topic, the source topic, plans and the backpressure
//! hook. Each records what it was asked, for the tests to assert on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rdkafka::consumer::CommitMode;
use rdkafka::error::KafkaResult;
use rdkafka::message::{OwnedMessage, Timestamp};

use crate::decode::{decode, DeadLetter};
use crate::dlq::DeadLetters;
use crate::originals::Originals;
use crate::partitions::Partitions;
use crate::retention::Plans;
use crate::retry::Backpressure;
use crate::write::{ErrorKind, WriteError, Writer};
use crate::Result;
use auditlog_store::events::EventRow;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A valid row of `partition` at `offset`, in workspace `ws-<offset>`.
pub fn row(partition: i32, offset: i64) -> EventRow {
    use auditlog_event::synth::{Synth, SynthConfig};
    let bytes = Synth::new(SynthConfig::default())
        .next_event()
        .to_json_bytes();
    let mut r = decode(Some(&bytes), 1 << 20, partition, offset).expect("a valid event");
    r.workspace_id = format!("ws-{offset}");
    r
}

/// Waits (up to 10 s) until `cond` holds.
pub async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// What the fake writer saw.
#[derive(Debug, Default)]
pub struct Written {
    /// Successful inserts: token and the rows' offsets.
    pub inserts: Vec<(String, Vec<i64>)>,
    /// Insert attempts (failed ones included).
    pub attempts: usize,
    /// The batch journal per partition: `(first, last)`, in recording order.
    pub journal: HashMap<i32, Vec<(i64, i64)>>,
}

/// A writer keeping inserts and the batch journal in memory; inserts fail (retryably) while
/// `failing` is set, and as bad data when they hold a row of an offset in `refused`.
#[derive(Clone, Default)]
pub struct FakeWriter {
    pub seen: Arc<Mutex<Written>>,
    pub failing: Arc<AtomicBool>,
    pub refused: Arc<Mutex<Vec<i64>>>,
}

impl FakeWriter {
    pub fn seen(&self) -> MutexGuard<'_, Written> {
        lock(&self.seen)
    }

    /// The tokens of the successful inserts, in order.
    pub fn tokens(&self) -> Vec<String> {
        self.seen().inserts.iter().map(|(t, _)| t.clone()).collect()
    }
}

impl Writer for FakeWriter {
    async fn insert(&self, rows: &[EventRow], token: &str) -> Result<(), WriteError> {
        let mut seen = self.seen();
        seen.attempts += 1;
        if self.failing.load(Ordering::SeqCst) {
            return Err(WriteError::retryable("ClickHouse is down (fake)"));
        }
        let refused = lock(&self.refused);
        if rows.iter().any(|r| refused.contains(&r.kafka_offset)) {
            return Err(WriteError {
                kind: ErrorKind::BadData,
                message: "Code: 469. constraint violated (fake)".into(),
            });
        }
        let offsets = rows.iter().map(|r| r.kafka_offset).collect();
        seen.inserts.push((token.to_owned(), offsets));
        Ok(())
    }

    async fn record_cut(
        &self,
        partition: i32,
        first: i64,
        last: i64,
        _rows: usize,
    ) -> Result<(), WriteError> {
        self.seen()
            .journal
            .entry(partition)
            .or_default()
            .push((first, last));
        Ok(())
    }

    async fn recorded_cuts(
        &self,
        partition: i32,
        from: i64,
    ) -> Result<Vec<(i64, i64)>, WriteError> {
        let seen = self.seen();
        let mut cuts: Vec<(i64, i64)> = seen
            .journal
            .get(&partition)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&(_, l)| l >= from)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        Ok(cuts)
    }
}

/// Partitions with committed offsets set by the test; seeks and commits are recorded.
#[derive(Default)]
pub struct FakePartitions {
    pub committed: Mutex<HashMap<i32, i64>>,
    pub seeks: Mutex<Vec<(i32, i64)>>,
    /// `(partition, next offset, synchronous)`.
    pub commits: Mutex<Vec<(i32, i64, bool)>>,
}

impl FakePartitions {
    pub fn commits(&self) -> Vec<(i32, i64, bool)> {
        lock(&self.commits).clone()
    }

    pub fn seeks(&self) -> Vec<(i32, i64)> {
        lock(&self.seeks).clone()
    }
}

impl Partitions for FakePartitions {
    fn committed(&self, partition: i32) -> KafkaResult<Option<i64>> {
        Ok(lock(&self.committed).get(&partition).copied())
    }

    fn seek(&self, partition: i32, offset: i64) -> KafkaResult<()> {
        lock(&self.seeks).push((partition, offset));
        Ok(())
    }

    fn commit(&self, offsets: &[(i32, i64)], mode: CommitMode) -> KafkaResult<()> {
        let sync = matches!(mode, CommitMode::Sync);
        lock(&self.commits).extend(offsets.iter().map(|&(p, o)| (p, o, sync)));
        Ok(())
    }

    fn pause(&self) -> KafkaResult<()> {
        Ok(())
    }

    fn resume(&self) -> KafkaResult<()> {
        Ok(())
    }
}

/// A dead-letter topic recording `(partition, offset, code)`.
#[derive(Default)]
pub struct FakeDeadLetters {
    pub sent: Mutex<Vec<(i32, i64, &'static str)>>,
}

impl DeadLetters for FakeDeadLetters {
    async fn send(&self, msg: &OwnedMessage, why: &DeadLetter) -> Result<()> {
        use rdkafka::Message as _;
        lock(&self.sent).push((msg.partition(), msg.offset(), why.code));
        Ok(())
    }
}

/// A message of `topic` at `partition`/`offset` with `payload`.
pub fn message(partition: i32, offset: i64, payload: &[u8]) -> OwnedMessage {
    OwnedMessage::new(
        Some(payload.to_vec()),
        None,
        "t".into(),
        Timestamp::NotAvailable,
        partition,
        offset,
        None,
    )
}

/// The source topic: any offset reads back as a message with an empty JSON payload.
#[derive(Default)]
pub struct FakeOriginals;

impl Originals for FakeOriginals {
    async fn fetch(&self, partition: i32, offsets: &[i64]) -> Result<Vec<OwnedMessage>> {
        Ok(offsets
            .iter()
            .map(|&o| message(partition, o, b"{}"))
            .collect())
    }
}

/// Plans with fixed retentions (7 days for any other workspace); counts refreshes.
#[derive(Default)]
pub struct FixedPlans {
    days: HashMap<String, u32>,
    pub refreshes: usize,
}

impl FixedPlans {
    pub fn new(days: &[(&str, u32)]) -> Self {
        Self {
            days: days.iter().map(|&(w, d)| (w.to_owned(), d)).collect(),
            refreshes: 0,
        }
    }
}

impl Plans for FixedPlans {
    fn days(&self, workspace_id: &str) -> u32 {
        self.days.get(workspace_id).copied().unwrap_or(7)
    }

    async fn refresh_if_due(&mut self) {
        self.refreshes += 1;
    }
}

/// A backpressure hook recording pauses (`true`) and resumes (`false`).
#[derive(Default)]
pub struct Hook {
    pauses: Mutex<Vec<bool>>,
    failures: AtomicUsize,
}

impl Hook {
    pub fn pauses(&self) -> Vec<bool> {
        lock(&self.pauses).clone()
    }

    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }
}

impl Backpressure for Hook {
    fn paused(&self, paused: bool) {
        lock(&self.pauses).push(paused);
    }

    fn failed(&self, _error: &str) {
        self.failures.fetch_add(1, Ordering::SeqCst);
    }

    fn waiting(&self) {}
}
