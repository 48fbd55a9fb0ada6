//! The producer: validate, serialize, hand to librdkafka, report the delivery.
//!
//! librdkafka's own queue is the bounded buffer (`queue.buffering.max.messages` =
//! `producer.buffer_capacity`): enqueueing is one validation, one serialization and one
//! `produce` call, with no extra hop. Its polling thread (an rdkafka `ThreadedProducer`) runs
//! the delivery reports in [`crate::delivery`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_event::limits::MAX_EVENT_BYTES;
use auditlog_event::{AuditEvent, SCHEMA_VERSION};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, PurgeConfig, ThreadedProducer};
use tokio::sync::oneshot;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::config::{ConfigError, KafkaConfig, OnFull, ProducerConfig};
use crate::delivery::{Delivery, DeliveryCallback, DeliveryContext, Pending};
use crate::error::{EmitError, ProducerError};
use crate::metrics::Metrics;

/// Content type header value of every event.
pub const CONTENT_TYPE: &str = "application/json";

/// Publishes audit events to the topic. Cheap to clone; clones share one Kafka client.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("topic", &self.inner.topic)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

struct Inner {
    client: ThreadedProducer<DeliveryContext>,
    topic: String,
    cfg: ProducerConfig,
    schema_version: String,
}

/// What [`Producer::flush`] and [`Producer::close`] report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Events acknowledged since the previous flush.
    pub delivered: u64,
    /// Events that failed since the previous flush (including those purged because the
    /// timeout expired), in the order their failure was reported.
    pub undelivered: Vec<Uuid>,
}

impl FlushReport {
    /// Whether everything enqueued was delivered.
    pub fn is_complete(&self) -> bool {
        self.undelivered.is_empty()
    }
}

struct Outgoing<'a> {
    topic: &'a str,
    key: Option<&'a [u8]>,
    payload: &'a [u8],
    /// Taken for each send attempt and handed back when the buffer was full.
    headers: Option<OwnedHeaders>,
}

enum SendFailure {
    Full(OwnedHeaders, Box<Pending>),
    Other(KafkaError),
}

impl Producer {
    /// Connects and checks that the topic exists, failing after `cfg.startup_timeout` when no
    /// broker answers. Delivery outcomes are reported through metrics only.
    pub async fn new(kafka: &KafkaConfig, cfg: &ProducerConfig) -> Result<Self, ProducerError> {
        Self::build(kafka, cfg, None).await
    }

    /// Like [`Producer::new`], also calling `callback` with every delivery outcome (on the
    /// client's polling thread: keep it short, e.g. send to a channel).
    pub async fn with_callback(
        kafka: &KafkaConfig,
        cfg: &ProducerConfig,
        callback: impl Fn(&Result<Delivery, EmitError>) + Send + Sync + 'static,
    ) -> Result<Self, ProducerError> {
        Self::build(kafka, cfg, Some(Arc::new(callback))).await
    }

    async fn build(
        kafka: &KafkaConfig,
        cfg: &ProducerConfig,
        callback: Option<DeliveryCallback>,
    ) -> Result<Self, ProducerError> {
        kafka.validate()?;
        cfg.validate()?;
        let context = DeliveryContext {
            metrics: Metrics::new(),
            callback,
            brokers: Arc::from(kafka.brokers.as_str()),
            delivery_timeout: cfg.delivery_timeout,
            delivered: Default::default(),
            undelivered: Default::default(),
        };
        let client: ThreadedProducer<DeliveryContext> = client_config(kafka, cfg)?
            .create_with_context(context)
            .map_err(ProducerError::Client)?;
        check_topic(&client, kafka, cfg.startup_timeout).await?;
        tracing::info!(brokers = %kafka.brokers, topic = %kafka.topic, "audit producer ready");
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                topic: kafka.topic.clone(),
                cfg: cfg.clone(),
                schema_version: SCHEMA_VERSION.to_string(),
            }),
        })
    }

    /// Validates and enqueues without waiting: a full buffer is [`EmitError::QueueFull`]
    /// whatever `on_full` says. The outcome goes to metrics and the callback.
    pub fn try_enqueue(&self, event: &AuditEvent) -> Result<(), EmitError> {
        let payload = self.prepare(event)?;
        let mut out = self.outgoing(event, &payload);
        let headers = out.headers.take().unwrap_or_default();
        match self.send(&out, headers, pending(event.event_id, None)) {
            Ok(()) => Ok(()),
            Err(f) => Err(self.give_up(f)),
        }
    }

    /// Validates and enqueues; when the buffer is full, waits for room (`on_full = "wait"`,
    /// at most `full_wait_timeout`) or fails (`on_full = "error"`). The outcome goes to
    /// metrics and the callback.
    pub async fn enqueue(&self, event: &AuditEvent) -> Result<(), EmitError> {
        let payload = self.prepare(event)?;
        let out = self.outgoing(event, &payload);
        self.send_waiting(out, pending(event.event_id, None)).await
    }

    /// Validates, enqueues (as [`Producer::enqueue`]) and resolves when the broker has
    /// acknowledged the event (or after `delivery_timeout` with [`EmitError::Delivery`]).
    pub async fn emit(&self, event: &AuditEvent) -> Result<Delivery, EmitError> {
        let span = tracing::debug_span!(
            "audit_emit",
            event_id = %event.event_id,
            event_type = %event.event,
            workspace_id = %event.workspace_id,
        );
        async {
            let payload = self.prepare(event)?;
            let (tx, rx) = oneshot::channel();
            let out = self.outgoing(event, &payload);
            self.send_waiting(out, pending(event.event_id, Some(tx)))
                .await?;
            self.await_delivery(event.event_id, rx).await
        }
        .instrument(span)
        .await
    }

    /// Publishes pre-serialized bytes to any topic, unvalidated, and waits for the ack
    /// (dead-letter replay). Honours `on_full` like [`Producer::enqueue`].
    pub async fn publish_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<Delivery, EmitError> {
        let headers = headers.iter().fold(
            OwnedHeaders::new_with_capacity(headers.len()),
            |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(*v),
                })
            },
        );
        let (tx, rx) = oneshot::channel();
        let out = Outgoing {
            topic,
            key,
            payload,
            headers: Some(headers),
        };
        self.send_waiting(out, pending(Uuid::nil(), Some(tx)))
            .await?;
        self.await_delivery(Uuid::nil(), rx).await
    }

    /// Events enqueued and not yet acknowledged or failed.
    pub fn in_flight(&self) -> usize {
        usize::try_from(self.inner.client.in_flight_count()).unwrap_or(0)
    }

    /// Waits until everything enqueued is acknowledged or failed, at most `timeout`; then
    /// purges what is left (reported undelivered). Returns what happened since the last flush.
    pub async fn flush(&self, timeout: Duration) -> FlushReport {
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || inner.flush(timeout)).await {
            Ok(report) => report,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Flushes (see [`Producer::flush`]) and drops this handle.
    pub async fn close(self, timeout: Duration) -> FlushReport {
        self.flush(timeout).await
    }

    /// Validation and serialization: an invalid event never reaches the client.
    fn prepare(&self, event: &AuditEvent) -> Result<Vec<u8>, EmitError> {
        event.to_validated_json_bytes().map_err(|e| {
            self.metrics().failed_invalid.increment(1);
            tracing::debug!(event_id = %event.event_id, error = %e, "invalid audit event refused");
            EmitError::Invalid(e)
        })
    }

    fn outgoing<'a>(&'a self, event: &'a AuditEvent, payload: &'a [u8]) -> Outgoing<'a> {
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header {
                key: "event_type",
                value: Some(event.event.as_str()),
            })
            .insert(Header {
                key: "schema_version",
                value: Some(self.inner.schema_version.as_str()),
            })
            .insert(Header {
                key: "content_type",
                value: Some(CONTENT_TYPE),
            });
        Outgoing {
            topic: &self.inner.topic,
            key: Some(event.workspace_id.as_bytes()),
            payload,
            headers: Some(headers),
        }
    }

    fn send(
        &self,
        out: &Outgoing<'_>,
        headers: OwnedHeaders,
        pending: Box<Pending>,
    ) -> Result<(), SendFailure> {
        let mut record = BaseRecord::<[u8], [u8], Box<Pending>>::with_opaque_to(out.topic, pending)
            .payload(out.payload)
            .headers(headers);
        if let Some(key) = out.key {
            record = record.key(key);
        }
        match self.inner.client.send(record) {
            Ok(()) => {
                self.metrics().queue_depth.increment(1.0);
                Ok(())
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => Err(
                SendFailure::Full(record.headers.unwrap_or_default(), record.delivery_opaque),
            ),
            Err((e, _)) => Err(SendFailure::Other(e)),
        }
    }

    async fn send_waiting(
        &self,
        mut out: Outgoing<'_>,
        mut pending: Box<Pending>,
    ) -> Result<(), EmitError> {
        let deadline = Instant::now() + self.inner.cfg.full_wait_timeout;
        loop {
            let headers = out.headers.take().unwrap_or_default();
            match self.send(&out, headers, pending) {
                Ok(()) => return Ok(()),
                Err(SendFailure::Full(headers, p))
                    if self.inner.cfg.on_full == OnFull::Wait && Instant::now() < deadline =>
                {
                    out.headers = Some(headers);
                    pending = p;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(f) => return Err(self.give_up(f)),
            }
        }
    }

    fn give_up(&self, failure: SendFailure) -> EmitError {
        match failure {
            SendFailure::Full(..) => {
                self.metrics().failed_queue_full.increment(1);
                EmitError::QueueFull {
                    capacity: self.inner.cfg.buffer_capacity,
                }
            }
            SendFailure::Other(e) => {
                self.metrics().failed_delivery.increment(1);
                EmitError::Rejected(Box::new(e))
            }
        }
    }

    async fn await_delivery(
        &self,
        event_id: Uuid,
        rx: oneshot::Receiver<Result<Delivery, EmitError>>,
    ) -> Result<Delivery, EmitError> {
        // The sender only disappears without answering if the client was torn down.
        rx.await.unwrap_or_else(|_| {
            Err(EmitError::Delivery {
                event_id,
                brokers: self.inner.client.context().brokers.clone(),
                timeout: self.inner.cfg.delivery_timeout,
                source: Box::new(KafkaError::Canceled),
            })
        })
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.client.context().metrics
    }
}

impl Inner {
    fn flush(&self, timeout: Duration) -> FlushReport {
        if self.client.flush(timeout).is_err() {
            let left = self.client.in_flight_count();
            tracing::warn!(
                left,
                ?timeout,
                "flush timed out; purging undelivered audit events"
            );
            self.client.purge(PurgeConfig::default().queue().inflight());
            // Serve the purged messages' delivery reports.
            let _ = self.client.flush(Duration::from_secs(5));
        }
        let ctx = self.client.context();
        FlushReport {
            delivered: ctx.delivered.swap(0, Ordering::Relaxed),
            undelivered: ctx.take_undelivered(),
        }
    }
}

fn pending(
    event_id: Uuid,
    reply: Option<oneshot::Sender<Result<Delivery, EmitError>>>,
) -> Box<Pending> {
    Box::new(Pending {
        event_id,
        enqueued: Instant::now(),
        reply,
    })
}

/// The librdkafka settings the producer uses: the connection's ([`KafkaConfig::client_config`]:
/// brokers, TLS, SASL), ours, the caller's `properties` last (reserved ones refused by
/// validation). Public so benchmarks can give a baseline client the very same settings.
pub fn client_config(
    kafka: &KafkaConfig,
    cfg: &ProducerConfig,
) -> Result<ClientConfig, ConfigError> {
    let mut c = kafka.client_config()?;
    c.set("client.id", &cfg.client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", cfg.compression.as_str())
        .set("linger.ms", cfg.linger.as_millis().to_string())
        .set(
            "queue.buffering.max.messages",
            cfg.buffer_capacity.to_string(),
        )
        .set(
            "message.timeout.ms",
            cfg.delivery_timeout.as_millis().to_string(),
        )
        // Reconnect quickly after a broker restart, and keep the broker thread responsive so
        // message timeouts fire on time (the default backoff grows to 10 s).
        .set("reconnect.backoff.max.ms", "1000")
        // Room for the largest valid event plus headers and framing.
        .set(
            "message.max.bytes",
            (MAX_EVENT_BYTES + 64 * 1024).to_string(),
        );
    for (k, v) in &cfg.properties {
        c.set(k, v);
    }
    Ok(c)
}

/// Fetches the topic's metadata: fails after `timeout` when no broker answers, or when the
/// topic does not exist.
async fn check_topic(
    client: &ThreadedProducer<DeliveryContext>,
    kafka: &KafkaConfig,
    timeout: Duration,
) -> Result<(), ProducerError> {
    let probe = client.clone();
    let topic = kafka.topic.clone();
    let metadata =
        tokio::task::spawn_blocking(move || probe.client().fetch_metadata(Some(&topic), timeout))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let unreachable = |source| ProducerError::Unreachable {
        brokers: kafka.brokers.clone(),
        timeout,
        source,
    };
    let metadata = metadata.map_err(unreachable)?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == kafka.topic)
        .is_some_and(|t| t.error().is_none() && !t.partitions().is_empty());
    if !found {
        return Err(ProducerError::TopicMissing {
            topic: kafka.topic.clone(),
            brokers: kafka.brokers.clone(),
        });
    }
    Ok(())
}
