//! Delivery reports: librdkafka calls [`DeliveryContext::delivery`] on the producer's polling
//! thread once per message, acknowledged or failed. Here they become metrics, the caller's
//! callback, the answer an `emit` is waiting for, and the list of undelivered ids `flush` returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::error::EmitError;
use crate::metrics::Metrics;

/// Where an acknowledged event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The event.
    pub event_id: Uuid,
    /// Partition it was written to.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
    /// Time from enqueue to acknowledgement.
    pub latency: Duration,
}

/// Called once per enqueued event with its outcome, on the producer's polling thread.
/// Keep it short (send to a channel, bump a counter).
pub type DeliveryCallback = Arc<dyn Fn(&Result<Delivery, EmitError>) + Send + Sync>;

/// What travels with each message through librdkafka.
pub(crate) struct Pending {
    pub event_id: Uuid,
    pub enqueued: Instant,
    pub reply: Option<oneshot::Sender<Result<Delivery, EmitError>>>,
}

pub(crate) struct DeliveryContext {
    pub metrics: Metrics,
    pub callback: Option<DeliveryCallback>,
    pub brokers: Arc<str>,
    pub delivery_timeout: Duration,
    pub delivered: AtomicU64,
    /// Ids that failed since the last `flush`.
    pub undelivered: Mutex<Vec<Uuid>>,
}

impl DeliveryContext {
    pub fn take_undelivered(&self) -> Vec<Uuid> {
        std::mem::take(
            &mut *self
                .undelivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::kafka_log::log(level, fac, log_message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        crate::kafka_log::error(&error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        let latency = pending.enqueued.elapsed();
        self.metrics.queue_depth.decrement(1.0);
        let outcome = match result {
            Ok(msg) => {
                self.metrics.sent.increment(1);
                self.metrics.latency.record(latency.as_secs_f64());
                self.delivered.fetch_add(1, Ordering::Relaxed);
                Ok(Delivery {
                    event_id: pending.event_id,
                    partition: msg.partition(),
                    offset: msg.offset(),
                    latency,
                })
            }
            Err((err, _)) => {
                self.metrics.failed_delivery.increment(1);
                tracing::warn!(event_id = %pending.event_id, error = %err, "audit event not delivered");
                self.undelivered
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(pending.event_id);
                Err(EmitError::Delivery {
                    event_id: pending.event_id,
                    brokers: self.brokers.clone(),
                    timeout: self.delivery_timeout,
                    source: Box::new(err.clone()),
                })
            }
        };
        if let Some(cb) = &self.callback {
            cb(&outcome);
        }
        if let Some(reply) = pending.reply {
            // The emitter may have stopped waiting (cancelled future); nothing to do then.
            let _ = reply.send(outcome);
        }
    }
}
