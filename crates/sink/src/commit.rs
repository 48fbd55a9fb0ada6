//! Write and commit: a task of its own that takes the batches the pipeline cuts, writes them
//! one at a time in the order they were cut (record the range, insert, dead-letter the rows
//! ClickHouse refuses) and commits each batch's offsets once its rows are in ClickHouse.
//!
//! Running beside the pipeline, it lets ClickHouse work on one batch while the next ones are
//! read, decoded and cut. The channel between the two holds at most one batch, so a slow
//! ClickHouse slows the pipeline down (and through it the reading) instead of growing memory.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rdkafka::consumer::CommitMode;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::batch::Batch;
use crate::decode::DeadLetter;
use crate::dlq::{dead_letter, DeadLetters};
use crate::observe::{self, Health};
use crate::originals::Originals;
use crate::partitions::Partitions;
use crate::retry::Retry;
use crate::write::{insert_isolating, Writer};
use crate::Result;

/// Work for the write stage, done in the order sent.
pub(crate) enum Job {
    /// Write a batch of `partition`, then commit `batch.last + 1`.
    Write { partition: i32, batch: Batch },
    /// Commit what was written of `partitions` synchronously and forget them (revocation,
    /// shutdown). `done` fires when this and every job before it are finished.
    Release {
        partitions: Vec<i32>,
        done: oneshot::Sender<()>,
    },
}

/// What the write stage did, for the run's summary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Written {
    pub inserted: u64,
    pub dead_lettered: u64,
}

/// Partitions whose writes were given up (revocation or shutdown during retries): nothing
/// more is written or committed for them until they are released. Shared by the pipeline
/// (which drops their messages) and the write stage.
#[derive(Debug, Default)]
pub(crate) struct Aborted(Mutex<HashSet<i32>>);

impl Aborted {
    pub fn contains(&self, p: i32) -> bool {
        self.lock().contains(&p)
    }

    /// Gives up `p` until it is released: its open batch is dropped uncommitted.
    pub fn insert(&self, p: i32) {
        warn!(
            partition = p,
            "giving up the partition's pending rows (not committed; they will be consumed again)"
        );
        self.lock().insert(p);
    }

    fn remove(&self, p: i32) {
        self.lock().remove(&p);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i32>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The write stage's state.
pub(crate) struct Committer<W, D, O> {
    pub topic: String,
    pub writer: W,
    pub dlq: Arc<D>,
    /// Where refused rows' messages are read back from.
    pub originals: O,
    /// Where offsets are committed.
    pub partitions: Arc<dyn Partitions>,
    pub retry: Retry,
    pub health: Arc<Health>,
    pub aborted: Arc<Aborted>,
    /// Next offset to commit per partition (everything before it is in ClickHouse).
    pub written: HashMap<i32, i64>,
    pub tally: Written,
}

/// Room in the channel to the write stage: one batch waits while one is written.
pub(crate) const QUEUE: usize = 1;

impl<W: Writer, D: DeadLetters, O: Originals> Committer<W, D, O> {
    /// Does the jobs in order until the channel closes; an error (the dead-letter topic
    /// failing) ends the stage and, through the closed channel, the run.
    pub async fn run(mut self, mut jobs: mpsc::Receiver<Job>) -> Result<Written> {
        let beat = self.health.write.clone();
        let _alive = beat.enter();
        // Waiting for work is not being stuck.
        while let Some(job) = observe::beating(&beat, jobs.recv()).await {
            match job {
                Job::Write { partition, batch } => self.write(partition, batch).await?,
                Job::Release { partitions, done } => {
                    self.release(&partitions);
                    let _ = done.send(());
                }
            }
        }
        Ok(self.tally)
    }

    /// Write one batch: record its range, insert it (isolating refused rows), dead-letter the
    /// refused rows, then commit `last + 1`.
    async fn write(&mut self, p: i32, batch: Batch) -> Result<()> {
        if self.aborted.contains(p) {
            return Ok(());
        }
        let started = Instant::now();
        let mut inserted = 0;
        if !batch.rows.is_empty() {
            let (first, last, rows) = (batch.first, batch.last, batch.rows.len());
            if !batch.recorded
                && self
                    .retry
                    .run("record batch", || {
                        self.writer.record_cut(p, first, last, rows)
                    })
                    .await
                    .is_err()
            {
                self.aborted.insert(p);
                return Ok(());
            }
            let Ok(refused) = self
                .retry
                .run("insert batch", || {
                    insert_isolating(&self.writer, &self.topic, p, &batch)
                })
                .await
            else {
                self.aborted.insert(p);
                return Ok(());
            };
            inserted = batch.rows.len() - refused.len();
            if !refused.is_empty() {
                // The batch keeps rows only: read the originals back (not committed yet, so
                // still in the topic) to dead-letter them byte for byte.
                let offsets: Vec<i64> = refused.iter().map(|r| r.offset).collect();
                let originals = self.originals.fetch(p, &offsets).await?;
                for (r, original) in refused.into_iter().zip(originals) {
                    warn!(partition = p, offset = r.offset, error = %r.message, "ClickHouse refused a row; dead-lettering it");
                    dead_letter(&*self.dlq, &original, &DeadLetter::rejected(r.message)).await?;
                    self.tally.dead_lettered += 1;
                }
            }
        }
        let next = batch.last + 1;
        if let Err(e) = self.partitions.commit(&[(p, next)], CommitMode::Async) {
            metrics::counter!(observe::COMMIT_ERRORS).increment(1);
            warn!(partition = p, error = %e, "commit failed");
        }
        self.written.insert(p, next);
        self.tally.inserted += inserted as u64;
        metrics::counter!(observe::INSERTED).increment(inserted as u64);
        metrics::counter!(observe::BATCHES).increment(1);
        metrics::histogram!(observe::BATCH_ROWS).record(batch.rows.len() as f64);
        metrics::histogram!(observe::BATCH_BYTES).record(batch.bytes as f64);
        metrics::histogram!(observe::BATCH_SECONDS).record(started.elapsed().as_secs_f64());
        self.health.batches.fetch_add(1, Ordering::Relaxed);
        debug!(
            partition = p,
            first = batch.first,
            last = batch.last,
            rows = inserted,
            "batch written"
        );
        Ok(())
    }

    /// Commits what was written of `partitions` synchronously and forgets them.
    fn release(&mut self, partitions: &[i32]) {
        let mut offsets = Vec::new();
        for &p in partitions {
            self.aborted.remove(p);
            if let Some(next) = self.written.remove(&p) {
                offsets.push((p, next));
            }
        }
        if !offsets.is_empty() {
            if let Err(e) = self.partitions.commit(&offsets, CommitMode::Sync) {
                metrics::counter!(observe::COMMIT_ERRORS).increment(1);
                warn!(error = %e, "final commit of released partitions failed; their last batches will be consumed again and deduplicated");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{row, FakeDeadLetters, FakeOriginals, FakePartitions, FakeWriter, Hook};
    use crate::interrupt::Interrupts;
    use crate::SinkConfig;

    #[tokio::test]
    async fn a_refused_row_is_dead_lettered_from_its_original_and_the_rest_committed() {
        let writer = FakeWriter::default();
        writer.refused.lock().unwrap().push(2);
        let (dlq, partitions) = (
            Arc::new(FakeDeadLetters::default()),
            Arc::new(FakePartitions::default()),
        );
        let committer = Committer {
            topic: "t".into(),
            writer: writer.clone(),
            dlq: dlq.clone(),
            originals: FakeOriginals,
            partitions: partitions.clone(),
            retry: Retry::new(
                &SinkConfig::default(),
                Arc::new(Hook::default()),
                Interrupts::default(),
            ),
            health: Arc::new(Health::default()),
            aborted: Arc::new(Aborted::default()),
            written: HashMap::new(),
            tally: Written::default(),
        };
        let (jobs, rx) = mpsc::channel(QUEUE);
        let stage = tokio::spawn(committer.run(rx));
        let batch = Batch {
            first: 0,
            last: 3,
            rows: (0..=3).map(|o| row(0, o)).collect(),
            bytes: 40,
            recorded: false,
        };
        let sent = jobs
            .send(Job::Write {
                partition: 0,
                batch,
            })
            .await;
        assert!(sent.is_ok());
        let (done, released) = oneshot::channel();
        let sent = jobs.send(Job::Release {
            partitions: vec![0],
            done,
        });
        assert!(sent.await.is_ok());
        assert!(released.await.is_ok());
        drop(jobs);
        let tally = stage.await.expect("no panic").expect("no error");
        assert_eq!((tally.inserted, tally.dead_lettered), (3, 1));
        assert_eq!(
            *dlq.sent.lock().unwrap(),
            vec![(0, 2, "rejected_by_clickhouse")]
        );
        // Isolated by halves, each with its own token; the range is recorded once.
        assert_eq!(
            writer.tokens(),
            vec!["t:0:0-3/part:0-1", "t:0:0-3/part:3-3"]
        );
        assert_eq!(writer.seen().journal[&0], vec![(0, 3)]);
        assert_eq!(partitions.commits(), vec![(0, 4, false), (0, 4, true)]);
    }
}
