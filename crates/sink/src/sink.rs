//! The pipeline, read top to bottom: consume -> decode -> batch (per partition) -> write ->
//! commit. One task owns all batching and writing state, so a partition's batches are written
//! and committed strictly in offset order.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_producer::KafkaConfig;
use auditlog_store::ClickHouseConfig;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::runtime::RuntimeFlavor;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::batch::{Batch, PartitionBatcher, Policy};
use crate::consume::{self, Input, SinkConsumer};
use crate::decode::{decode, DeadLetter};
use crate::dlq::DeadLetterProducer;
use crate::observe::{self, Health};
use crate::retention::Retention;
use crate::watchdog;
use crate::write::{insert_isolating, ClickHouseWriter, WriteError, Writer};
use crate::{Error, Result, SinkConfig};

/// Messages buffered between the consume task and the pipeline.
const CHANNEL_CAPACITY: usize = 2048;

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
    kafka: &KafkaConfig,
    clickhouse: &ClickHouseConfig,
    cfg: &SinkConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary> {
    cfg.validate()?;
    clickhouse.validate()?;
    if tokio::runtime::Handle::current().runtime_flavor() != RuntimeFlavor::MultiThread {
        return Err(Error::Runtime(
            "the consumer needs a multi-threaded Tokio runtime".into(),
        ));
    }
    let client = clickhouse.client();
    let writer = ClickHouseWriter::new(client.clone(), &kafka.topic);
    let health = Arc::new(Health::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = if cfg.metrics_listen.is_empty() {
        None
    } else {
        let s = observe::serve(&cfg.metrics_listen, health.clone(), stop_rx.clone()).await?;
        info!(listen = %cfg.metrics_listen, "serving /metrics and /health");
        Some(s)
    };
    let _ = observe::prometheus();

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
                        _ = &mut shutdown => return Ok(Summary::default()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(cfg.retry_max_backoff);
                }
            }
        }
    };
    let dlq = DeadLetterProducer::new(&kafka.brokers, &kafka.dlq_topic)?;

    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let interrupt = Arc::new(AtomicBool::new(false));
    let consumer = Arc::new(consume::create(
        &kafka.brokers,
        &kafka.topic,
        cfg,
        tx.clone(),
        interrupt.clone(),
    )?);
    consumer
        .subscribe(&[&kafka.topic])
        .map_err(|e| Error::kafka(format!("subscribe to {}", kafka.topic), e))?;
    let reader = tokio::spawn(consume::run(consumer.clone(), tx, stop_rx.clone()));
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

    let mut pipeline = Pipeline {
        cfg: cfg.clone(),
        topic: kafka.topic.clone(),
        consumer: consumer.clone(),
        writer,
        dlq,
        retention,
        batchers: HashMap::new(),
        aborted: HashSet::new(),
        written: HashMap::new(),
        rewound: HashMap::new(),
        interrupt: interrupt.clone(),
        health: health.clone(),
        summary: Summary::default(),
    };
    let result = pipeline.run(rx, &mut shutdown, &stop_tx).await;

    health.running.store(false, Ordering::SeqCst);
    consumer.context().closing.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    let _ = reader.await;
    let _ = watchdog.await;
    if let Some(s) = server {
        let _ = s.await;
    }
    drop(pipeline);
    drop(consumer);
    result
}

/// Why a write was given up.
#[derive(Debug)]
struct Aborted;

struct Pipeline<W: Writer> {
    cfg: SinkConfig,
    topic: String,
    consumer: Arc<SinkConsumer>,
    writer: W,
    dlq: DeadLetterProducer,
    retention: Retention,
    /// Open batches per partition (created when the partition's first message arrives).
    batchers: HashMap<i32, PartitionBatcher<OwnedMessage>>,
    /// Partitions whose write was given up (revocation or shutdown during retries): their
    /// further messages are ignored until the revocation completes; nothing more is committed.
    aborted: HashSet<i32>,
    /// Next offset to commit per partition (everything before it is in ClickHouse).
    written: HashMap<i32, i64>,
    /// Partitions rewound to their committed offset after an assignment started them further
    /// on: their messages are ignored until the one at this offset arrives.
    rewound: HashMap<i32, i64>,
    interrupt: Arc<AtomicBool>,
    health: Arc<Health>,
    summary: Summary,
}

impl<W: Writer> Pipeline<W> {
    async fn run(
        &mut self,
        mut rx: mpsc::Receiver<Input>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
        stop: &watch::Sender<bool>,
    ) -> Result<Summary> {
        loop {
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
                    Some(Input::Message(m)) => self.on_message(m).await?,
                    Some(Input::Revoke { partitions, done }) => {
                        self.on_revoke(&partitions).await?;
                        let _ = done.send(());
                    }
                    None => break,
                },
                _ = sleep => self.flush_due().await?,
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
        info!(
            consumed = self.summary.consumed,
            inserted = self.summary.inserted,
            dead_lettered = self.summary.dead_lettered,
            "consumer stopped"
        );
        Ok(self.summary)
    }

    /// Decode one message, dead-letter it or add its row, write the batches it completes.
    async fn on_message(&mut self, m: OwnedMessage) -> Result<()> {
        let (p, o) = (m.partition(), m.offset());
        if self.aborted.contains(&p) {
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
        metrics::counter!(observe::CONSUMED).increment(1);
        self.summary.consumed += 1;
        if !self.batchers.contains_key(&p) {
            // First message since assignment: reproduce the batches recorded from here on.
            let Ok(recorded) = self
                .with_retry("read recorded batches", || self.writer.recorded_cuts(p, o))
                .await
            else {
                self.abort(p);
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
        let bytes = m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
        let item = match decode(
            m.payload(),
            self.cfg.max_message_bytes,
            |ws| self.retention.days(ws),
            p,
            o,
        ) {
            Ok(row) => Some((row, m)),
            Err(why) => {
                self.dead_letter(&m, &why).await?;
                None
            }
        };
        let done = match self.batchers.get_mut(&p) {
            Some(b) => b.push(o, item, bytes, Instant::now()),
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
        let due: Vec<(i32, Batch<OwnedMessage>)> = self
            .batchers
            .iter_mut()
            .filter_map(|(&p, b)| b.take_due(now).map(|batch| (p, batch)))
            .collect();
        for (p, batch) in due {
            self.write(p, batch).await?;
        }
        Ok(())
    }

    /// Flushes the partitions' open batches, commits synchronously, forgets the partitions.
    async fn on_revoke(&mut self, partitions: &[i32]) -> Result<()> {
        for &p in partitions {
            if let Some(batch) = self.batchers.get_mut(&p).and_then(PartitionBatcher::take) {
                self.write(p, batch).await?;
            }
        }
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            self.batchers.remove(p);
            self.aborted.remove(p);
            self.rewound.remove(p);
            if let Some(next) = self.written.remove(p) {
                let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(next));
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
                metrics::counter!(observe::COMMIT_ERRORS).increment(1);
                warn!(error = %e, "final commit of revoked partitions failed; their last batches will be consumed again and deduplicated");
            }
        }
        self.interrupt.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Write one batch: record its range, insert it (isolating refused rows), dead-letter the
    /// refused rows, then commit `last + 1`.
    async fn write(&mut self, p: i32, mut batch: Batch<OwnedMessage>) -> Result<()> {
        if self.aborted.contains(&p) {
            return Ok(());
        }
        let started = Instant::now();
        self.retention.refresh_if_due().await;
        for row in &mut batch.rows {
            row.retention_days = self.retention.days(&row.workspace_id);
        }
        let mut inserted = 0;
        if !batch.rows.is_empty() {
            let (first, last, rows) = (batch.first, batch.last, batch.rows.len());
            if !batch.recorded
                && self
                    .with_retry("record batch", || {
                        self.writer.record_cut(p, first, last, rows)
                    })
                    .await
                    .is_err()
            {
                self.abort(p);
                return Ok(());
            }
            let topic = self.topic.clone();
            let Ok(refused) = self
                .with_retry("insert batch", || {
                    insert_isolating(&self.writer, &topic, p, &batch)
                })
                .await
            else {
                self.abort(p);
                return Ok(());
            };
            inserted = batch.rows.len() - refused.len();
            for r in refused {
                warn!(partition = p, offset = r.offset, error = %r.message, "ClickHouse refused a row; dead-lettering it");
                self.dead_letter(&r.raw, &DeadLetter::rejected(r.message))
                    .await?;
            }
        }
        let next = batch.last + 1;
        let mut tpl = TopicPartitionList::new();
        let _ = tpl.add_partition_offset(&self.topic, p, Offset::Offset(next));
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            metrics::counter!(observe::COMMIT_ERRORS).increment(1);
            warn!(partition = p, error = %e, "commit failed");
        }
        self.written.insert(p, next);
        self.summary.inserted += inserted as u64;
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

    async fn dead_letter(&mut self, m: &OwnedMessage, why: &DeadLetter) -> Result<()> {
        warn!(partition = m.partition(), offset = m.offset(), code = why.code, reason = %why.message, "dead-lettering message");
        self.dlq.send(m, why).await?;
        metrics::counter!(observe::DEAD_LETTERED, "reason" => why.code).increment(1);
        self.summary.dead_lettered += 1;
        Ok(())
    }

    /// Gives up a partition until it is revoked: its open batch is dropped uncommitted.
    fn abort(&mut self, p: i32) {
        warn!(
            partition = p,
            "giving up the partition's pending rows (not committed; they will be consumed again)"
        );
        self.aborted.insert(p);
        self.batchers.remove(&p);
    }

    fn policy(&self) -> Policy {
        Policy {
            max_rows: self.cfg.batch_max_rows,
            max_bytes: self.cfg.batch_max_bytes,
            max_wait: self.cfg.batch_max_wait,
        }
    }

    /// Retries `f` with capped exponential backoff, consumption paused meanwhile, until it
    /// succeeds or a revocation/shutdown interrupts.
    async fn with_retry<T, F, Fut>(&self, what: &str, f: F) -> Result<T, Aborted>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, WriteError>>,
    {
        let mut backoff = self.cfg.retry_initial_backoff;
        let mut paused = false;
        loop {
            match f().await {
                Ok(v) => {
                    if paused {
                        self.set_paused(false);
                        info!(what, "ClickHouse write recovered; consumption resumed");
                    }
                    return Ok(v);
                }
                Err(e) => {
                    metrics::counter!(observe::RETRIES).increment(1);
                    if !paused {
                        self.set_paused(true);
                        paused = true;
                    }
                    warn!(what, error = %e, retry_in = ?backoff, "ClickHouse write failed; consumption paused");
                    let until = Instant::now() + backoff;
                    while Instant::now() < until {
                        if self.interrupt.load(Ordering::SeqCst) {
                            self.set_paused(false);
                            return Err(Aborted);
                        }
                        tokio::time::sleep(Duration::from_millis(50).min(backoff)).await;
                    }
                    backoff = (backoff * 2).min(self.cfg.retry_max_backoff);
                }
            }
        }
    }

    fn set_paused(&self, paused: bool) {
        self.health
            .clickhouse_failing
            .store(paused, Ordering::SeqCst);
        metrics::gauge!(observe::PAUSED).set(if paused { 1.0 } else { 0.0 });
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let r = if paused {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        if let Err(e) = r {
            warn!(error = %e, paused, "could not pause/resume partitions");
        }
    }
}
