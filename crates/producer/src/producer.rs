//! The producer: validate, serialize, hand to librdkafka, report the delivery.
//!
//! librdkafka's own queue is the bounded buffer (`queue.buffering.max.messages` =
//! `producer.buffer_capacity`): enqueueing is one validation, one serialization and one
//! `produce` call, with no extra hop. Its polling thread (an rdkafka `ThreadedProducer`) runs
//! the delivery reports in [`crate::delivery`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog_event::{AuditEvent, Prepared, SCHEMA_VERSION};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, PurgeConfig, ThreadedProducer};
use tokio::sync::oneshot;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::builder::ProducerBuilder;
use crate::config::{KafkaConfig, OnFull, ProducerConfig};
use crate::delivery::{Delivery, DeliveryContext, Pending};
use crate::error::{CloseError, EmitError};
use crate::metrics::Metrics;

/// Content type header value of every event.
pub const CONTENT_TYPE: &str = "application/json";

/// Publishes audit events to the topic. Cheap to clone; clones share one Kafka client, which
/// lives until the last clone is closed ([`Producer::close`]) or dropped.
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

/// One event on its way to the topic.
struct Outgoing<'a> {
    /// `workspace_id`.
    key: &'a [u8],
    payload: &'a [u8],
    /// Taken for each send attempt and handed back when the buffer was full.
    headers: Option<OwnedHeaders>,
}

enum SendFailure {
    Full(OwnedHeaders, Box<Pending>),
    Other(KafkaError),
}

impl Producer {
    /// Starts building a producer for `kafka`'s brokers and topic: set the tuning with
    /// [`ProducerBuilder::config`], a delivery callback with [`ProducerBuilder::on_delivery`],
    /// then [`ProducerBuilder::build`].
    pub fn builder(kafka: &KafkaConfig) -> ProducerBuilder<'_> {
        ProducerBuilder::new(kafka)
    }

    pub(crate) fn from_client(
        client: ThreadedProducer<DeliveryContext>,
        topic: String,
        cfg: ProducerConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                topic,
                cfg,
                schema_version: SCHEMA_VERSION.to_string(),
            }),
        }
    }

    /// Validates and enqueues, never waiting: a full buffer (`buffer_capacity` events not yet
    /// acknowledged) is [`EmitError::QueueFull`] at once, whatever `on_full` says. The same as
    /// `enqueue(event, OnFull::Error)` without a future, for synchronous code and hot loops.
    /// The delivery outcome goes to metrics and the callback.
    pub fn try_enqueue(&self, event: &AuditEvent) -> Result<(), EmitError> {
        let prepared = self.prepare(event)?;
        let mut out = self.outgoing(&prepared);
        let headers = out.headers.take().unwrap_or_default();
        match self.send(&out, headers, pending(event.event_id, None)) {
            Ok(()) => Ok(()),
            Err(f) => Err(self.give_up(f)),
        }
    }

    /// Validates and enqueues; `on_full` says what a full buffer does, whatever the configured
    /// `on_full`: [`OnFull::Wait`] waits for room, at most `full_wait_timeout`, then fails with
    /// [`EmitError::QueueFull`]; [`OnFull::Error`] fails with it at once. Pass
    /// `config.on_full` to follow the configuration. Resolves once the event is in the buffer;
    /// the delivery outcome goes to metrics and the callback.
    pub async fn enqueue(&self, event: &AuditEvent, on_full: OnFull) -> Result<(), EmitError> {
        let prepared = self.prepare(event)?;
        let out = self.outgoing(&prepared);
        self.send_waiting(out, pending(event.event_id, None), on_full)
            .await
    }

    /// Validates, enqueues (a full buffer handled as the configured `on_full` says, see
    /// [`Producer::enqueue`]) and resolves when the broker has acknowledged the event (or after
    /// `delivery_timeout` with [`EmitError::Delivery`]).
    pub async fn emit(&self, event: &AuditEvent) -> Result<Delivery, EmitError> {
        let prepared = self.prepare(event)?;
        self.emit_prepared(&prepared).await
    }

    /// Publishes an event validated and serialized before ([`AuditEvent::prepare`], or read
    /// back from the outbox): the record is exactly `prepared.json`, keyed by its workspace.
    /// Enqueues as [`Producer::emit`] does and resolves when the broker acknowledged it.
    pub async fn emit_prepared(&self, prepared: &Prepared) -> Result<Delivery, EmitError> {
        let span = tracing::debug_span!(
            "audit_emit",
            event_id = %prepared.event_id,
            event_type = %prepared.event_type,
            workspace_id = %prepared.workspace_id,
        );
        async {
            let (tx, rx) = oneshot::channel();
            let out = self.outgoing(prepared);
            let on_full = self.inner.cfg.on_full;
            self.send_waiting(out, pending(prepared.event_id, Some(tx)), on_full)
                .await?;
            self.await_delivery(prepared.event_id, rx).await
        }
        .instrument(span)
        .await
    }

    /// Enqueues a prepared event without waiting for room: a full buffer is
    /// [`EmitError::QueueFull`] at once. Returns a future that resolves with the delivery
    /// (like [`Producer::emit`]'s), so a caller can enqueue many and then await them all.
    pub fn enqueue_prepared(
        &self,
        prepared: &Prepared,
    ) -> Result<
        impl std::future::Future<Output = Result<Delivery, EmitError>> + Send + 'static,
        EmitError,
    > {
        let (tx, rx) = oneshot::channel();
        let mut out = self.outgoing(prepared);
        let headers = out.headers.take().unwrap_or_default();
        if let Err(f) = self.send(&out, headers, pending(prepared.event_id, Some(tx))) {
            return Err(self.give_up(f));
        }
        let this = self.clone();
        let event_id = prepared.event_id;
        Ok(async move { this.await_delivery(event_id, rx).await })
    }

    /// Events enqueued and not yet acknowledged or failed.
    pub fn in_flight(&self) -> usize {
        usize::try_from(self.inner.client.in_flight_count()).unwrap_or(0)
    }

    /// Waits until everything enqueued (through any clone) is acknowledged or failed, at most
    /// `timeout`; then purges what is left (reported undelivered). Returns what happened since
    /// the last flush. The producer stays usable.
    pub async fn flush(&self, timeout: Duration) -> FlushReport {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.flush(timeout)).await
    }

    /// Flushes (see [`Producer::flush`]) and shuts the client down: the last word on every
    /// event enqueued since the previous flush. Only the last handle can close: while clones
    /// remain (they could still enqueue, and whatever they enqueue after a flush would be
    /// purged when the last of them is dropped), nothing is flushed and
    /// [`CloseError::Shared`] hands this handle back; drop the clones (or use `flush`).
    ///
    /// Dropping the last handle without `close` purges what is still buffered (reported
    /// failed to metrics and the callback).
    pub async fn close(self, timeout: Duration) -> Result<FlushReport, CloseError> {
        let inner = Arc::try_unwrap(self.inner).map_err(|inner| CloseError::Shared {
            clones: Arc::strong_count(&inner).saturating_sub(1).max(1),
            producer: Producer { inner },
        })?;
        // Dropping the client joins its polling thread: blocking too.
        Ok(blocking(move || inner.flush(timeout)).await)
    }

    /// Validation and serialization: an invalid event never reaches the client.
    fn prepare(&self, event: &AuditEvent) -> Result<Prepared, EmitError> {
        event.prepare().map_err(|e| {
            self.metrics().failed_invalid.increment(1);
            tracing::debug!(event_id = %event.event_id, error = %e, "invalid audit event refused");
            EmitError::Invalid(e)
        })
    }

    fn outgoing<'a>(&'a self, prepared: &'a Prepared) -> Outgoing<'a> {
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header {
                key: "event_type",
                value: Some(prepared.event_type.as_str()),
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
            key: prepared.workspace_id.as_bytes(),
            payload: &prepared.json,
            headers: Some(headers),
        }
    }

    fn send(
        &self,
        out: &Outgoing<'_>,
        headers: OwnedHeaders,
        pending: Box<Pending>,
    ) -> Result<(), SendFailure> {
        let record =
            BaseRecord::<[u8], [u8], Box<Pending>>::with_opaque_to(&self.inner.topic, pending)
                .key(out.key)
                .payload(out.payload)
                .headers(headers);
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
        on_full: OnFull,
    ) -> Result<(), EmitError> {
        let deadline = Instant::now() + self.inner.cfg.full_wait_timeout;
        loop {
            let headers = out.headers.take().unwrap_or_default();
            match self.send(&out, headers, pending) {
                Ok(()) => return Ok(()),
                Err(SendFailure::Full(headers, p))
                    if on_full == OnFull::Wait && Instant::now() < deadline =>
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

/// Runs `f` on the blocking pool (librdkafka's flush and teardown block their thread).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
