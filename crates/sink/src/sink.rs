//! The pipeline, read top to bottom: consume -> decode -> batch (per partition) -> write ->
//! commit. One task owns the batching state and hands the batches it cuts, in order, to the
//! write stage ([`crate::commit`]), which writes and commits them one at a time: a
//! partition's batches are written and committed strictly in offset order, and ClickHouse
//! works on one batch while the pipeline reads and cuts the next.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_store::ClickHouseConfig;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::runtime::RuntimeFlavor;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::batch::{Batch, PartitionBatcher, Policy};
use crate::commit::{self, Aborted, Committer, Job, Retry, Written};
use crate::consume::{self, Consumed, Input, SinkConsumer};
use crate::dlq::DeadLetterProducer;
use crate::observe::{self, Health};
use crate::retention::Retention;
use crate::watchdog;
use crate::write::{ClickHouseWriter, Writer};
use crate::{Error, Result, SinkConfig};

/// Chunks of messages buffered between the consume task and the pipeline.
const CHANNEL_CAPACITY: usize = 8;

/// What a run did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Messages consumed.
    pub consumed: u64,
    /// Rows inserted.
    pub inserted: u64,
    /// Messages dead-lettered.
    pub dead_lettered: u64,
}

/// Runs the consumer until `shutdown` completes, then flushes, commits and returns.
///
/// Needs a multi-threaded Tokio runtime (the rebalance hand-off blocks one worker).
pub async fn run(
    kafka: &crate::config::KafkaSettings,
    clickhouse: &ClickHouseConfig,
    cfg: &SinkConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary> {
    cfg.validate()?;
    clickhouse.validate()?;
    kafka.validate()?;
    if tokio::runtime::Handle::current().runtime_flavor() != RuntimeFlavor::MultiThread {
        return Err(Error::Runtime(
            "the consumer needs a multi-threaded Tokio runtime".into(),
        ));
    }
    // A TLS setting ClickHouse refuses is a configuration error, not an outage to wait out.
    clickhouse.check_tls().await?;
    let client = clickhouse.client();
    let writer = ClickHouseWriter::new(client.clone(), &kafka.topic);
    let health = Arc::new(Health::new(&cfg.group_id, &kafka.topic, &kafka.brokers));
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = if cfg.metrics_listen.is_empty() {
        None
    } else {
        let s = observe::serve(&cfg.metrics_listen, health.clone(), stop_rx.clone()).await?;
        info!(listen = %cfg.metrics_listen, "serving /metrics, /health, /health/ready and /health/live");
        Some(s)
    };
    let _ = observe::prometheus();

    // The consumer exists (not subscribed) from the start so the health checks can ask the
    // broker while startup waits for ClickHouse.
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let interrupt = Arc::new(AtomicBool::new(false));
    let consumer = Arc::new(consume::create(
        kafka,
        &kafka.topic,
        cfg,
        tx.clone(),
        interrupt.clone(),
        health.clone(),
    )?);
    let prober = tokio::spawn(observe::probe(
        health.clone(),
        consumer.clone(),
        client.clone(),
        stop_rx.clone(),
    ));

    // Workspace plans, needed to stamp rows: wait for ClickHouse at startup.
    tokio::pin!(shutdown);
    let retention = {
        let mut backoff = cfg.retry_initial_backoff;
        loop {
            match Retention::load(client.clone(), cfg.plans_refresh).await {
                Ok(r) => break r,
                Err(e) => {
                    warn!(error = %e, retry_in = ?backoff, "cannot read workspace plans yet");
                    tokio::select! {
                        _ = &mut shutdown => {
                            let _ = stop_tx.send(true);
                            let _ = prober.await;
                            return Ok(Summary::default());
                        }
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(cfg.retry_max_backoff);
                }
            }
        }
    };
    let dlq = Arc::new(DeadLetterProducer::new(kafka, &kafka.dlq_topic)?);

    consumer
        .subscribe(&[&kafka.topic])
        .map_err(|e| Error::kafka(format!("subscribe to {}", kafka.topic), e))?;
    health.subscribed();
    let reader = tokio::spawn(consume::run(
        consumer.clone(),
        tx,
        stop_rx.clone(),
        cfg.max_message_bytes,
    ));
    let watchdog = tokio::spawn(watchdog::run(
        consumer.clone(),
        kafka.topic.clone(),
        client.clone(),
        (cfg.session_timeout / 2).max(Duration::from_secs(1)),
        cfg.session_timeout * 2,
        stop_rx,
    ));
    info!(topic = %kafka.topic, group = %cfg.group_id, "consuming");
    health.running.store(true, Ordering::SeqCst);

    let retry = Retry::new(cfg, consumer.clone(), interrupt.clone(), health.clone());
    let aborted = Arc::new(Aborted::default());
    let (jobs, jobs_rx) = mpsc::channel(commit::QUEUE);
    let committer = Committer {
        topic: kafka.topic.clone(),
        writer: writer.clone(),
        dlq: dlq.clone(),
        retry: retry.clone(),
        aborted: aborted.clone(),
        written: HashMap::new(),
        tally: Written::default(),
    };
    let mut pipeline = Pipeline {
        cfg: cfg.clone(),
        topic: kafka.topic.clone(),
        consumer: consumer.clone(),
        writer,
        dlq,
        retention,
        retry,
        batchers: HashMap::new(),
        aborted,
        rewound: HashMap::new(),
        jobs: Some(jobs),
        room: None,
        stage: Some(tokio::spawn(committer.run(jobs_rx))),
        interrupt: interrupt.clone(),
        summary: Summary::default(),
    };
    let result = pipeline.run(rx, &mut shutdown, &stop_tx).await;

    health.running.store(false, Ordering::SeqCst);
    health.stopped.store(true, Ordering::SeqCst);
    consumer.context().closing.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    let _ = reader.await;
    let _ = watchdog.await;
    let _ = prober.await;
    if let Some(s) = server {
        let _ = s.await;
    }
    drop(pipeline);
    drop(consumer);
    result
}

struct Pipeline<W: Writer> {
    cfg: SinkConfig,
    topic: String,
    consumer: Arc<SinkConsumer>,
    writer: W,
    dlq: Arc<DeadLetterProducer>,
    retention: Retention,
    retry: Retry,
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
    interrupt: Arc<AtomicBool>,
    summary: Summary,
}

impl<W: Writer + Clone + 'static> Pipeline<W> {
    async fn run(
        &mut self,
        mut rx: mpsc::Receiver<Input>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
        stop: &watch::Sender<bool>,
    ) -> Result<Summary> {
        let beat = self.retry.health.pipeline.clone();
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
        self.interrupt.store(true, Ordering::SeqCst);
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
                commit::dead_letter(&self.dlq, &message, &why).await?;
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
        let mut tpl = TopicPartitionList::new();
        let _ = tpl.add_partition(&self.topic, p);
        let consumer = self.consumer.clone();
        let committed = tokio::task::spawn_blocking(move || {
            consumer.committed_offsets(tpl, Duration::from_secs(10))
        })
        .await;
        let Ok(Ok(tpl)) = committed else {
            return false;
        };
        let Some(Offset::Offset(c)) = tpl.find_partition(&self.topic, p).map(|e| e.offset()) else {
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
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        let seek = tokio::task::spawn_blocking(move || {
            consumer.seek(&topic, p, Offset::Offset(c), Duration::from_secs(10))
        })
        .await;
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
        self.interrupt.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Hands a batch to the write stage, with the rows' retention stamped from the plans as
    /// they are now (a plan may have changed since the rows were decoded).
    async fn write(&mut self, p: i32, mut batch: Batch) -> Result<()> {
        if self.aborted.contains(p) {
            return Ok(());
        }
        self.retention.refresh_if_due().await;
        for row in &mut batch.rows {
            row.retention_days = self.retention.days(&row.workspace_id);
        }
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
