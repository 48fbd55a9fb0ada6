//! The assembly: builds the consumer, the dead-letter producer, the writer and the tasks
//! (consume, pipeline and its write stage, watchdog, probe, health server), runs them until
//! shutdown and takes them down in order. The data path itself is [`crate::pipeline`]:
//! consume -> decode -> batch (per partition) -> write -> commit.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use auditlog_store::ClickHouseConfig;
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::consumer::Consumer;
use tokio::runtime::RuntimeFlavor;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::consume;
use crate::dlq::DeadLetterProducer;
use crate::observe::{self, Health};
use crate::originals::SourceReader;
use crate::partitions::{KafkaPartitions, Partitions};
use crate::pipeline::{Pipeline, Seams};
use crate::retention::Retention;
use crate::retry::Backpressure;
use crate::watchdog;
use crate::write::ClickHouseWriter;
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
/// `prometheus` renders `/metrics`: the handle of the process's recorder, installed by the
/// caller before (with [`observe::HISTOGRAM_BUCKETS`]).
///
/// Needs a multi-threaded Tokio runtime (the rebalance hand-off blocks one worker).
pub async fn run(
    kafka: &crate::config::KafkaSettings,
    clickhouse: &ClickHouseConfig,
    cfg: &SinkConfig,
    prometheus: PrometheusHandle,
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
    clickhouse.check_startup().await?;
    let client = clickhouse.client();
    let writer = ClickHouseWriter::new(client.clone(), &kafka.topic);
    let health = Arc::new(Health::new(&cfg.group_id, &kafka.topic, &kafka.brokers));
    let (stop_tx, stop_rx) = watch::channel(false);
    observe::register();
    let server = if cfg.metrics_listen.is_empty() {
        None
    } else {
        let s = observe::serve(
            &cfg.metrics_listen,
            health.clone(),
            prometheus,
            stop_rx.clone(),
        )
        .await?;
        info!(listen = %cfg.metrics_listen, "serving /metrics, /health, /health/ready and /health/live");
        Some(s)
    };

    // The consumer exists (not subscribed) from the start so the health checks can ask the
    // broker while startup waits for ClickHouse.
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let consumer = Arc::new(consume::create(
        kafka,
        &kafka.topic,
        cfg,
        tx.clone(),
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

    let partitions = KafkaPartitions::new(consumer.clone(), &kafka.topic);
    let seams = Seams {
        writer,
        dlq,
        originals: SourceReader::new(kafka, &kafka.topic),
        plans: retention,
        partitions: Arc::new(partitions.clone()),
        backpressure: Arc::new(PauseReading {
            partitions,
            health: health.clone(),
        }),
        // A revocation makes a retried write give up (the pipeline adds its shutdown).
        interrupts: consumer.context().revoking.watch(),
        health: health.clone(),
    };
    let mut pipeline = Pipeline::start(cfg, &kafka.topic, seams);
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

/// The retry loops' backpressure: pause every assigned partition while ClickHouse writes fail,
/// and say so in `/health`.
struct PauseReading {
    partitions: KafkaPartitions,
    health: Arc<Health>,
}

impl Backpressure for PauseReading {
    fn paused(&self, paused: bool) {
        self.health
            .clickhouse_failing
            .store(paused, Ordering::SeqCst);
        let r = if paused {
            self.partitions.pause()
        } else {
            self.partitions.resume()
        };
        if let Err(e) = r {
            warn!(error = %e, paused, "could not pause/resume partitions");
        }
    }

    fn failed(&self, error: &str) {
        self.health.write_failed(error);
    }

    fn waiting(&self) {
        self.health.retrying();
    }
}
