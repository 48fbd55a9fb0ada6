//! Consume: the Kafka consumer, its rebalance hook and the task that feeds the pipeline.
//!
//! Offsets are never committed automatically (`enable.auto.commit=false`,
//! `enable.auto.offset.store=false`): the pipeline commits a batch's range after ClickHouse
//! accepted it. On revocation the rebalance callback (which librdkafka runs inside this task's
//! `recv`) hands the chunk of messages being filled, then a [`Input::Revoke`], to the pipeline
//! through the same channel, so the revocation arrives after every message read before it, and
//! blocks until the pipeline has flushed (or dropped, uncommitted) the revoked partitions' rows
//! and committed what it wrote.
//!
//! Messages are decoded here, straight from librdkafka's buffer: a good message travels on as
//! its row only (no copy of the message); a poison one is copied to be dead-lettered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;

use auditlog_producer::KafkaConfig;
use auditlog_store::events::EventRow;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message as _, OwnedMessage};
use rdkafka::statistics::Statistics;
use rdkafka::TopicPartitionList;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::decode::{decode, DeadLetter};
use crate::interrupt::Interrupt;
use crate::observe::{self, Health};
use crate::{Error, Result, SinkConfig};

/// Messages handed to the pipeline at once, at most (those already fetched when the consume
/// task looks: one hand-off per chunk instead of one per message).
const CHUNK: usize = 256;

/// One message, decoded by the consume task (so only its row, not a copy of the message,
/// travels on, unless it is poison).
#[derive(Debug)]
pub struct Consumed {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Payload plus key bytes (what the batch limits count).
    pub bytes: usize,
    /// The row (retention provisional: the pipeline stamps it when the batch is written), or
    /// the message and why it goes to the dead-letter topic.
    pub row: Result<EventRow, Box<(OwnedMessage, DeadLetter)>>,
}

impl Consumed {
    /// Decodes a message; messages larger than `max_bytes` are poison.
    pub fn decode(m: &BorrowedMessage<'_>, max_bytes: usize) -> Self {
        let (partition, offset) = (m.partition(), m.offset());
        let row = decode(m.payload(), max_bytes, partition, offset)
            .map_err(|why| Box::new((m.detach(), why)));
        Self {
            partition,
            offset,
            bytes: m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len),
            row,
        }
    }
}

/// What the consume task hands to the pipeline, in order.
#[derive(Debug)]
pub enum Input {
    /// Messages, in the order they were consumed.
    Messages(Vec<Consumed>),
    /// These partitions are being revoked: flush or drop their rows, commit, then reply.
    Revoke {
        /// The revoked partitions of our topic.
        partitions: Vec<i32>,
        /// Dropped or sent when done.
        done: oneshot::Sender<()>,
    },
}

/// The consumer's context: rebalance hand-off, commit errors, lag and group state from
/// statistics, librdkafka's logs through the shared limiter.
pub struct SinkContext {
    topic: String,
    health: Arc<Health>,
    tx: mpsc::Sender<Input>,
    runtime: Handle,
    /// Set at shutdown: the pipeline has flushed everything itself; revocations during close
    /// return at once.
    pub closing: AtomicBool,
    /// Raised while a revocation is handed to the pipeline: a write being retried gives up
    /// (its rows stay uncommitted). Raised and lowered by the rebalance callback only.
    pub revoking: Interrupt,
    /// The chunk the consume task is filling. A revocation (which librdkafka delivers inside
    /// the consume task's `recv`) hands it over before the `Revoke`, so the pipeline sees
    /// every message of a revoked partition before the revocation.
    pending: Mutex<Vec<Consumed>>,
}

impl SinkContext {
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Consumed>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientContext for SinkContext {
    fn stats(&self, stats: Statistics) {
        if let Some(t) = stats.topics.get(&self.topic) {
            for (p, s) in &t.partitions {
                if *p >= 0 && s.consumer_lag >= 0 {
                    metrics::gauge!(observe::LAG, "topic" => self.topic.clone(), "partition" => p.to_string())
                        .set(s.consumer_lag as f64);
                }
            }
        }
        if let Some(g) = &stats.cgrp {
            self.health.coordinator(&g.state, &g.join_state);
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        auditlog_producer::kafka_log::log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        auditlog_producer::kafka_log::error(&error, reason);
    }
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                metrics::counter!(observe::REBALANCES, "kind" => "assign").increment(1);
                let partitions = partitions_of(tpl, &self.topic);
                if partitions.is_empty() {
                    info!("no partitions assigned: idle member (the group has more members than the topic has partitions)");
                } else {
                    info!(?partitions, "partitions assigned");
                }
                self.health.assigned(partitions);
            }
            Rebalance::Revoke(tpl) => {
                metrics::counter!(observe::REBALANCES, "kind" => "revoke").increment(1);
                let partitions = partitions_of(tpl, &self.topic);
                self.health.revoked();
                info!(?partitions, "partitions revoked; flushing their rows");
                if partitions.is_empty() || self.closing.load(Ordering::SeqCst) {
                    return;
                }
                self.revoking.raise();
                let (done, wait) = oneshot::channel();
                let tx = self.tx.clone();
                // Quickwit's pattern: hand the revocation to the async side and wait for it.
                // This runs inside the consume task's poll; block_in_place lets the runtime move
                // the pipeline task to another worker meanwhile.
                let chunk = std::mem::take(&mut *self.pending());
                tokio::task::block_in_place(|| {
                    self.runtime.block_on(async move {
                        if !chunk.is_empty() && tx.send(Input::Messages(chunk)).await.is_err() {
                            return;
                        }
                        if tx.send(Input::Revoke { partitions, done }).await.is_ok() {
                            let _ = wait.await;
                        }
                    });
                });
                self.revoking.lower();
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            metrics::counter!(observe::COMMIT_ERRORS).increment(1);
            warn!(error = %e, "offset commit failed; the range will be consumed again and deduplicated");
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements()
        .iter()
        .filter(|e| e.topic() == topic)
        .map(|e| e.partition())
        .collect()
}

/// The consumer type.
pub type SinkConsumer = StreamConsumer<SinkContext>;

/// Creates the consumer (not yet subscribed) and the channel its context feeds.
pub fn create(
    kafka: &KafkaConfig,
    topic: &str,
    cfg: &SinkConfig,
    tx: mpsc::Sender<Input>,
    health: Arc<Health>,
) -> Result<SinkConsumer> {
    let ctx = SinkContext {
        topic: topic.to_owned(),
        health,
        tx,
        runtime: Handle::current(),
        closing: AtomicBool::new(false),
        revoking: Interrupt::default(),
        pending: Mutex::new(Vec::with_capacity(CHUNK)),
    };
    // Brokers, TLS and SASL: the settings every client shares.
    let mut config = kafka.client_config()?;
    if !cfg.instance_id.is_empty() {
        config.set("group.instance.id", &cfg.instance_id);
    }
    config
        .set("group.id", &cfg.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", &cfg.auto_offset_reset)
        .set(
            "session.timeout.ms",
            cfg.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (cfg.session_timeout.as_millis() / 4).max(100).to_string(),
        )
        .set(
            "queued.max.messages.kbytes",
            cfg.fetch_queue_kbytes.to_string(),
        )
        .set(
            "fetch.wait.max.ms",
            cfg.fetch_wait_max.as_millis().to_string(),
        )
        // When the prefetch queue is full librdkafka waits this long before fetching the
        // partition again (default 1 s): with a backlog, the queue drains in far less and the
        // consumer would sit idle for the rest.
        .set("fetch.queue.backoff.ms", "20")
        .set("statistics.interval.ms", "5000")
        .create_with_context(ctx)
        .map_err(|e| Error::kafka("create consumer", e))
}

/// Longest pause after consecutive consumer errors (they double from 100 ms).
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(5);

/// Reads and decodes messages and hands them to the pipeline, in chunks of what is already
/// fetched, until `stop` or until the pipeline is gone. Messages over `max_bytes` are poison.
///
/// Consumer errors (broker down, topic missing) are logged through the shared limiter and
/// back off (100 ms doubling to 5 s while nothing but errors comes); librdkafka retries by
/// itself, `/health/ready` says what is wrong.
pub async fn run(
    consumer: Arc<SinkConsumer>,
    tx: mpsc::Sender<Input>,
    mut stop: watch::Receiver<bool>,
    max_bytes: usize,
) {
    let ctx = consumer.context();
    let beat = ctx.health.consume.clone();
    let _alive = beat.enter();
    let mut errors = 0u32;
    let mut take_in = |m: rdkafka::error::KafkaResult<BorrowedMessage<'_>>| match m {
        Ok(m) => {
            errors = 0;
            ctx.pending().push(Consumed::decode(&m, max_bytes));
            None
        }
        Err(e) => {
            let text = e.to_string();
            if let Some(held) = auditlog_producer::kafka_log::LogLimiter::global()
                .admit(&text, std::time::Instant::now())
            {
                if held == 0 {
                    warn!(error = %text, "kafka consumer error");
                } else {
                    warn!(error = %text, repeated = held, "kafka consumer error");
                }
            }
            errors = errors.saturating_add(1);
            Some(
                (Duration::from_millis(100) * 2u32.saturating_pow(errors.min(7) - 1))
                    .min(MAX_ERROR_BACKOFF),
            )
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        beat.beat();
        let backoff = tokio::select! {
            biased;
            _ = stop.changed() => break,
            m = consumer.recv() => take_in(m),
            // An idle topic is not a stuck loop.
            _ = tick.tick() => continue,
        };
        if let Some(pause) = backoff {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        // Whatever else is fetched already, without waiting.
        while ctx.pending().len() < CHUNK {
            match consumer.recv().now_or_never() {
                Some(m) => {
                    if take_in(m).is_some() {
                        break;
                    }
                }
                None => break,
            }
        }
        let chunk = std::mem::replace(&mut *ctx.pending(), Vec::with_capacity(CHUNK));
        // Waiting while the pipeline is busy is not this loop's fault.
        if !chunk.is_empty()
            && observe::beating(&beat, tx.send(Input::Messages(chunk)))
                .await
                .is_err()
        {
            break;
        }
    }
}
