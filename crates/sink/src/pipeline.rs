//! The pipeline task, read top to bottom: messages (decoded by the consume task) -> batch (per
//! partition) -> write stage. It owns the batching state and hands the batches it cuts, in
//! order, to the write stage ([`crate::commit`]), which writes and commits them one at a time:
//! a partition's batches are written and committed strictly in offset order, and ClickHouse
//! works on one batch while the pipeline reads and cuts the next. On a revocation it flushes
//! the revoked partitions and waits until the write stage committed them; on shutdown, every
//! partition.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::batch::{Batch, PartitionBatcher, Policy};
use crate::commit::{self, Aborted, Committer, Job, Written};
use crate::consume::{Consumed, Input};
use crate::dlq::{dead_letter, DeadLetters};
use crate::interrupt::{Interrupt, Interrupts};
use crate::observe::{self, Health};
use crate::originals::Originals;
use crate::partitions::Partitions;
use crate::retention::{self, Plans};
use crate::retry::{Backpressure, Retry};
use crate::sink::Summary;
use crate::write::Writer;
use crate::{Error, Result, SinkConfig};

/// What the pipeline and its write stage work with: each a narrow seam, real in [`crate::sink`],
/// fake in the unit tests.
pub(crate) struct Seams<W, D, O, L> {
    /// Where batches go (and the batch journal).
    pub writer: W,
    /// Where poison messages and refused rows go.
    pub dlq: Arc<D>,
    /// Where refused rows' messages are read back from.
    pub originals: O,
    /// Each workspace's retention.
    pub plans: L,
    /// The consumer's partitions: committed offsets, seek, commit.
    pub partitions: Arc<dyn Partitions>,
    /// What ClickHouse retries pause while they fail.
    pub backpressure: Arc<dyn Backpressure>,
    /// Raised by others to make a retried write give up (the rebalance callback's revocation);
    /// the pipeline adds its own shutdown.
    pub interrupts: Interrupts,
    /// Heartbeats and the batch count for `/health`.
    pub health: Arc<Health>,
}

/// The pipeline task's state.
pub(crate) struct Pipeline<W, D, L> {
    cfg: SinkConfig,
    partitions: Arc<dyn Partitions>,
    writer: W,
    dlq: Arc<D>,
    plans: L,
    retry: Retry,
    health: Arc<Health>,
    /// Open batches per partition (created when the partition's first message arrives).
    batchers: HashMap<i32, PartitionBatcher>,
    /// Partitions whose write was given up: their further messages are ignored until the
    /// revocation completes; nothing more is committed.
    aborted: Arc<Aborted>,
    /// Partitions rewound to their committed offset after an assignment started them further
    /// on: their messages are ignored until the one at this offset arrives.
    rewound: HashMap<i32, i64>,
    /// To the write stage (`None` once it is closed at shutdown).
    jobs: Option<mpsc::Sender<Job>>,
    /// Room in the write stage's channel, reserved before a chunk of messages is processed: a
    /// batch cut while the write stage is busy waits in its batcher (counted in the pending
    /// bytes) rather than outside it, so at most two batches (one written, one queued) are
    /// held beyond `max_pending_bytes`.
    room: Option<mpsc::OwnedPermit<Job>>,
    /// The write stage.
    stage: Option<JoinHandle<Result<Written>>>,
    /// Raised at shutdown: a write being retried gives up (its rows stay uncommitted).
    stopping: Interrupt,
    summary: Summary,
}

impl<W, D, L> Pipeline<W, D, L>
where
    W: Writer + Clone + 'static,
    D: DeadLetters + 'static,
    L: Plans,
{
    /// The pipeline of `topic`, with its write stage spawned.
    pub fn start<O: Originals + 'static>(
        cfg: &SinkConfig,
        topic: &str,
        seams: Seams<W, D, O, L>,
    ) -> Self {
        let stopping = Interrupt::default();
        let retry = Retry::new(cfg, seams.backpressure, seams.interrupts.and(&stopping));
        let aborted = Arc::new(Aborted::default());
        let (jobs, jobs_rx) = mpsc::channel(commit::QUEUE);
        let committer = Committer {
            topic: topic.to_owned(),
            writer: seams.writer.clone(),
            dlq: seams.dlq.clone(),
            originals: seams.originals,
            partitions: seams.partitions.clone(),
            retry: retry.clone(),
            health: seams.health.clone(),
            aborted: aborted.clone(),
            written: HashMap::new(),
            tally: Written::default(),
        };
        Self {
            cfg: cfg.clone(),
            partitions: seams.partitions,
            writer: seams.writer,
            dlq: seams.dlq,
            plans: seams.plans,
            retry,
            health: seams.health,
            batchers: HashMap::new(),
            aborted,
            rewound: HashMap::new(),
            jobs: Some(jobs),
            room: None,
            stage: Some(tokio::spawn(committer.run(jobs_rx))),
            stopping,
            summary: Summary::default(),
        }
    }

    /// Runs until `shutdown` completes (or the consume task is gone), then flushes and
    /// commits what it holds and returns what it did.
    pub async fn run(
        &mut self,
        mut rx: mpsc::Receiver<Input>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
        stop: &watch::Sender<bool>,
    ) -> Result<Summary> {
        let beat = self.health.pipeline.clone();
        let _alive = beat.enter();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            beat.beat();
            let deadline = self
                .batchers
                .values()
                .filter_map(PartitionBatcher::deadline)
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = &mut *shutdown => break,
                input = rx.recv() => match input {
                    Some(Input::Messages(chunk)) => {
                        self.reserve_room().await;
                        let before = self.summary.consumed;
                        for m in chunk {
                            self.on_message(m).await?;
                        }
                        // Messages ignored (given-up or rewound partitions) are not counted.
                        metrics::counter!(observe::CONSUMED)
                            .increment(self.summary.consumed - before);
                    }
                    Some(Input::Revoke { partitions, done }) => {
                        self.on_revoke(&partitions).await?;
                        let _ = done.send(());
                    }
                    None => break,
                },
                _ = sleep => self.flush_due().await?,
                // Idle (no messages, no batch due) is not stuck.
                _ = tick.tick() => {}
            }
        }
        // Shutdown: stop reading, drop what was not batched yet (uncommitted), flush the
        // batches, commit synchronously.
        info!("shutting down: flushing pending batches");
        let _ = stop.send(true);
        self.stopping.raise();
        rx.close();
        while rx.recv().await.is_some() {}
        let partitions: Vec<i32> = self.batchers.keys().copied().collect();
        self.on_revoke(&partitions).await?;
        // Every batch is written: close the write stage and collect its tally.
        self.room = None;
        self.jobs = None;
        let written = self.join_stage().await?;
        self.summary.inserted = written.inserted;
        self.summary.dead_lettered += written.dead_lettered;
        info!(
            consumed = self.summary.consumed,
            inserted = self.summary.inserted,
            dead_lettered = self.summary.dead_lettered,
            "consumer stopped"
        );
        Ok(self.summary)
    }

    /// Dead-letters a poison message or adds its row, writes the batches it completes.
    async fn on_message(&mut self, m: Consumed) -> Result<()> {
        let (p, o) = (m.partition, m.offset);
        if self.aborted.contains(p) {
            // Given up by the write stage: drop the open batch too (uncommitted).
            self.batchers.remove(&p);
            return Ok(());
        }
        if let Some(&start) = self.rewound.get(&p) {
            if o != start {
                return Ok(());
            }
            self.rewound.remove(&p);
        } else if !self.batchers.contains_key(&p) && self.rewind_if_ahead(p, o).await {
            return Ok(());
        }
        self.summary.consumed += 1;
        if !self.batchers.contains_key(&p) {
            // First message since assignment: reproduce the batches recorded from here on.
            let Ok(recorded) = self
                .retry
                .run("read recorded batches", || self.writer.recorded_cuts(p, o))
                .await
            else {
                self.aborted.insert(p);
                return Ok(());
            };
            debug!(
                partition = p,
                from = o,
                recorded = recorded.len(),
                "partition started"
            );
            self.batchers
                .insert(p, PartitionBatcher::new(self.policy(), recorded));
        }
        let row = match m.row {
            Ok(row) => Some(row),
            Err(poison) => {
                let (message, why) = *poison;
                dead_letter(&*self.dlq, &message, &why).await?;
                self.summary.dead_lettered += 1;
                None
            }
        };
        let done = match self.batchers.get_mut(&p) {
            Some(b) => b.push(o, row, m.bytes, Instant::now()),
            None => Vec::new(),
        };
        for batch in done {
            self.write(p, batch).await?;
        }
        // Memory bound: cut the largest open batch while all of them hold too much.
        while self
            .batchers
            .values()
            .map(PartitionBatcher::pending_bytes)
            .sum::<usize>()
            > self.cfg.max_pending_bytes
        {
            let Some((&lp, _)) = self.batchers.iter().max_by_key(|(_, b)| b.pending_bytes()) else {
                break;
            };
            match self.batchers.get_mut(&lp).and_then(PartitionBatcher::take) {
                Some(batch) => self.write(lp, batch).await?,
                None => break,
            }
        }
        Ok(())
    }

    /// Guards against a fetch that starts after the committed offset (seen after an eager
    /// rebalance that gives a partition back to the same consumer: offsets between the last
    /// commit and the old fetch position would be skipped). Seeks back and returns true then.
    async fn rewind_if_ahead(&mut self, p: i32, o: i64) -> bool {
        let partitions = self.partitions.clone();
        let committed = tokio::task::spawn_blocking(move || partitions.committed(p)).await;
        let Ok(Ok(Some(c))) = committed else {
            return false;
        };
        if c >= o {
            return false;
        }
        warn!(
            partition = p,
            committed = c,
            fetched = o,
            "fetch started after the committed offset; seeking back"
        );
        let partitions = self.partitions.clone();
        let seek = tokio::task::spawn_blocking(move || partitions.seek(p, c)).await;
        match seek {
            Ok(Ok(())) => {
                self.rewound.insert(p, c);
                true
            }
            _ => {
                tracing::error!(
                    partition = p,
                    committed = c,
                    fetched = o,
                    "seek back failed; continuing from the fetched offset"
                );
                false
            }
        }
    }

    async fn flush_due(&mut self) -> Result<()> {
        let now = Instant::now();
        let due: Vec<(i32, Batch)> = self
            .batchers
            .iter_mut()
            .filter_map(|(&p, b)| b.take_due(now).map(|batch| (p, batch)))
            .collect();
        for (p, batch) in due {
            self.write(p, batch).await?;
        }
        Ok(())
    }

    /// Flushes the partitions' open batches, waits until the write stage has written them and
    /// committed synchronously, forgets the partitions.
    async fn on_revoke(&mut self, partitions: &[i32]) -> Result<()> {
        for &p in partitions {
            if let Some(batch) = self.batchers.get_mut(&p).and_then(PartitionBatcher::take) {
                self.write(p, batch).await?;
            }
        }
        let (done, released) = oneshot::channel();
        self.send(Job::Release {
            partitions: partitions.to_vec(),
            done,
        })
        .await?;
        if released.await.is_err() {
            return Err(self.stage_failure().await);
        }
        for p in partitions {
            self.batchers.remove(p);
            self.rewound.remove(p);
        }
        Ok(())
    }

    /// Hands a batch to the write stage, with the rows' retention stamped from the plans as
    /// they are now (a plan may have changed since the rows were decoded).
    async fn write(&mut self, p: i32, mut batch: Batch) -> Result<()> {
        if self.aborted.contains(p) {
            return Ok(());
        }
        self.plans.refresh_if_due().await;
        retention::stamp(&self.plans, &mut batch.rows);
        self.send(Job::Write {
            partition: p,
            batch,
        })
        .await
    }

    /// Waits for room in the write stage's channel (unless already reserved).
    async fn reserve_room(&mut self) {
        if self.room.is_none() {
            if let Some(jobs) = &self.jobs {
                // A closed channel (write stage gone) surfaces at the next send.
                self.room = jobs.clone().reserve_owned().await.ok();
            }
        }
    }

    /// Sends a job to the write stage: into the reserved room, or waiting while it is busy
    /// with the one before.
    async fn send(&mut self, job: Job) -> Result<()> {
        let sent = match (self.room.take(), &self.jobs) {
            (Some(room), Some(_)) => {
                room.send(job);
                true
            }
            (_, Some(jobs)) => jobs.send(job).await.is_ok(),
            (_, None) => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.stage_failure().await)
        }
    }

    /// Why the write stage stopped early.
    async fn stage_failure(&mut self) -> Error {
        match self.join_stage().await {
            Err(e) => e,
            Ok(_) => Error::Runtime("the write stage stopped".into()),
        }
    }

    async fn join_stage(&mut self) -> Result<Written> {
        match self.stage.take() {
            Some(stage) => stage
                .await
                .map_err(|e| Error::Runtime(format!("the write stage failed: {e}")))?,
            None => Err(Error::Runtime("the write stage stopped".into())),
        }
    }

    fn policy(&self) -> Policy {
        Policy {
            max_rows: self.cfg.batch_max_rows,
            max_bytes: self.cfg.batch_max_bytes,
            max_wait: self.cfg.batch_max_wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{
        row, until, FakeDeadLetters, FakeOriginals, FakePartitions, FakeWriter, FixedPlans, Hook,
    };

    /// A pipeline and its write stage over fakes, run on a task of its own; the test plays the
    /// consume task (messages, revocations) and the shutdown.
    struct Harness {
        tx: Option<mpsc::Sender<Input>>,
        shutdown: Option<oneshot::Sender<()>>,
        run: JoinHandle<Result<Summary>>,
        writer: FakeWriter,
        partitions: Arc<FakePartitions>,
        hook: Arc<Hook>,
        /// The rebalance callback's interrupt.
        revoking: Interrupt,
    }

    fn cfg() -> SinkConfig {
        SinkConfig {
            batch_max_rows: 100,
            batch_max_bytes: 1 << 20,
            batch_max_wait: Duration::from_secs(60),
            max_pending_bytes: 1 << 20,
            retry_initial_backoff: Duration::from_millis(10),
            retry_max_backoff: Duration::from_millis(20),
            ..SinkConfig::default()
        }
    }

    impl Harness {
        fn start(cfg: &SinkConfig, writer: FakeWriter, partitions: FakePartitions) -> Self {
            let partitions = Arc::new(partitions);
            let hook = Arc::new(Hook::default());
            let revoking = Interrupt::default();
            let seams = Seams {
                writer: writer.clone(),
                dlq: Arc::new(FakeDeadLetters::default()),
                originals: FakeOriginals,
                plans: FixedPlans::default(),
                partitions: partitions.clone(),
                backpressure: hook.clone(),
                interrupts: revoking.watch(),
                health: Arc::new(Health::default()),
            };
            let mut pipeline = Pipeline::start(cfg, "t", seams);
            let (tx, rx) = mpsc::channel(8);
            let (shutdown, stopped) = oneshot::channel::<()>();
            let run = tokio::spawn(async move {
                let (stop, _) = watch::channel(false);
                let mut stopped = Box::pin(async move {
                    let _ = stopped.await;
                });
                pipeline.run(rx, &mut stopped, &stop).await
            });
            Self {
                tx: Some(tx),
                shutdown: Some(shutdown),
                run,
                writer,
                partitions,
                hook,
                revoking,
            }
        }

        /// Messages of `partition` at `offsets`, `bytes` each, in one chunk.
        async fn send(&self, partition: i32, offsets: impl IntoIterator<Item = i64>, bytes: usize) {
            let chunk = offsets
                .into_iter()
                .map(|offset| Consumed {
                    partition,
                    offset,
                    bytes,
                    row: Ok(row(partition, offset)),
                })
                .collect();
            let tx = self.tx.as_ref().expect("running");
            tx.send(Input::Messages(chunk))
                .await
                .expect("pipeline running");
        }

        /// Revokes `partitions` as the rebalance callback does: raise, hand over, wait, lower.
        async fn revoke(&self, partitions: &[i32]) {
            self.revoking.raise();
            let (done, wait) = oneshot::channel();
            let tx = self.tx.as_ref().expect("running");
            tx.send(Input::Revoke {
                partitions: partitions.to_vec(),
                done,
            })
            .await
            .expect("pipeline running");
            tokio::time::timeout(Duration::from_secs(10), wait)
                .await
                .expect("the revocation completes")
                .expect("answered");
            self.revoking.lower();
        }

        /// Shuts down once the pipeline took every chunk sent (a shutdown drops the chunks not
        /// taken yet, uncommitted).
        async fn stop(mut self) -> (Summary, FakeWriter, Arc<FakePartitions>) {
            if let Some(tx) = &self.tx {
                until("the pipeline took every chunk", || {
                    tx.capacity() == tx.max_capacity()
                })
                .await;
            }
            let _ = self.shutdown.take().map(|s| s.send(()));
            let summary = tokio::time::timeout(Duration::from_secs(10), self.run)
                .await
                .expect("the pipeline stops")
                .expect("no panic")
                .expect("no error");
            drop(self.tx);
            (summary, self.writer, self.partitions)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fetch_ahead_of_the_committed_offset_is_rewound() {
        // An eager rebalance gave partition 0 back with the fetch at 10, but only 5 is
        // committed: offsets 5..10 would be skipped.
        let partitions = FakePartitions::default();
        partitions.committed.lock().unwrap().insert(0, 5);
        let h = Harness::start(&cfg(), FakeWriter::default(), partitions);
        h.send(0, [10, 11], 10).await;
        until("the pipeline seeks back", || {
            !h.partitions.seeks().is_empty()
        })
        .await;
        // Messages before the sought offset arrives again are ignored.
        h.send(0, 5..=11, 10).await;
        let (summary, writer, partitions) = h.stop().await;
        assert_eq!(partitions.seeks(), vec![(0, 5)]);
        assert_eq!(writer.tokens(), vec!["t:0:5-11".to_owned()]);
        assert_eq!(writer.seen().inserts[0].1, (5..=11).collect::<Vec<_>>());
        assert_eq!(summary.consumed, 7);
        assert_eq!(partitions.commits().last(), Some(&(0, 12, true)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replay_reproduces_the_recorded_cuts_and_records_only_new_ones() {
        // The batch journal holds two time cuts of partition 0 from an earlier run.
        let writer = FakeWriter::default();
        writer.seen().journal.insert(0, vec![(0, 2), (3, 4)]);
        let h = Harness::start(&cfg(), writer, FakePartitions::default());
        h.send(0, 0..=6, 10).await;
        let (summary, writer, partitions) = h.stop().await;
        assert_eq!(writer.tokens(), vec!["t:0:0-2", "t:0:3-4", "t:0:5-6"]);
        assert_eq!(writer.seen().journal[&0], vec![(0, 2), (3, 4), (5, 6)]);
        assert_eq!(summary.inserted, 7);
        let async_commits: Vec<_> = partitions.commits().into_iter().filter(|c| !c.2).collect();
        assert_eq!(
            async_commits,
            vec![(0, 3, false), (0, 5, false), (0, 7, false)]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revocation_during_a_retried_write_drops_the_batch_uncommitted() {
        let cfg = SinkConfig {
            batch_max_rows: 2,
            ..cfg()
        };
        let writer = FakeWriter::default();
        writer
            .failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let h = Harness::start(&cfg, writer, FakePartitions::default());
        h.send(0, [0, 1], 10).await;
        until("the write is retried", || h.writer.seen().attempts >= 2).await;
        assert_eq!(
            h.hook.pauses(),
            vec![true],
            "consumption paused while retrying"
        );
        // The revocation interrupts the retry: the batch is given up, nothing committed.
        h.revoke(&[0]).await;
        assert_eq!(h.hook.pauses(), vec![true, false], "resumed when giving up");
        assert!(h.partitions.commits().is_empty());
        assert!(h.writer.tokens().is_empty());
        // Assigned again (here, or to the next owner): the same range is consumed again and
        // written as the batch recorded before the failed insert.
        h.writer
            .failing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        h.send(0, [0, 1], 10).await;
        let (_, writer, partitions) = h.stop().await;
        assert_eq!(writer.tokens(), vec!["t:0:0-1"]);
        assert_eq!(partitions.commits(), vec![(0, 2, false), (0, 2, true)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_memory_bound_cuts_the_largest_open_batch() {
        let cfg = SinkConfig {
            max_pending_bytes: 350,
            ..cfg()
        };
        let h = Harness::start(&cfg, FakeWriter::default(), FakePartitions::default());
        h.send(1, [0], 100).await;
        // Partition 0's third message brings the open batches to 400 bytes: partition 0 holds
        // the most (300) and is cut; partition 1's batch stays open.
        h.send(0, [0, 1, 2], 100).await;
        until("a batch is written", || !h.writer.tokens().is_empty()).await;
        assert_eq!(h.writer.tokens(), vec!["t:0:0-2"]);
        let (_, writer, _) = h.stop().await;
        assert_eq!(writer.tokens(), vec!["t:0:0-2", "t:1:0-0"]);
    }
}
