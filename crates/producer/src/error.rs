//! Typed errors, grouped by what the caller should do.

use std::sync::Arc;
use std::time::Duration;

use auditlog_event::ValidationError;
use rdkafka::error::KafkaError;
use uuid::Uuid;

use crate::config::ConfigError;
use crate::producer::Producer;

/// Building the producer (`ProducerBuilder::build`) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// Fix the configuration.
    #[error("invalid producer configuration: {0}")]
    Config(#[from] ConfigError),
    /// librdkafka refused the configuration (for example an unknown property).
    #[error("cannot create the Kafka producer: {0}")]
    Client(#[source] KafkaError),
    /// No broker answered within `producer.startup_timeout`: start the broker or fix
    /// `kafka.brokers`, then retry.
    #[error(
        "no Kafka broker at {brokers} answered within {timeout:?} (producer.startup_timeout): {source}; \
         check that the broker is running and kafka.brokers is right (with TLS or SASL, also \
         kafka.security_protocol, kafka.ssl_ca_file and the kafka.sasl_* credentials)"
    )]
    Unreachable {
        /// The configured bootstrap brokers.
        brokers: String,
        /// The startup timeout that expired.
        timeout: Duration,
        /// What librdkafka reported.
        #[source]
        source: KafkaError,
    },
    /// The broker answered but the topic does not exist (it is not auto-created): create it.
    #[error("topic {topic:?} does not exist on {brokers} (create it, e.g. `tansu topic create {topic}`)")]
    TopicMissing {
        /// The configured topic.
        topic: String,
        /// The configured bootstrap brokers.
        brokers: String,
    },
}

/// An event could not be enqueued or was not delivered.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The event breaks a validation rule; it never left the process. Fix the event.
    #[error("invalid event: {0}")]
    Invalid(#[from] ValidationError),
    /// The buffer is full (`producer.buffer_capacity`): slow down and retry.
    #[error("producer buffer is full ({capacity} events in flight); slow down and retry")]
    QueueFull {
        /// The configured capacity.
        capacity: usize,
    },
    /// The broker did not acknowledge the event within `producer.delivery_timeout` (or refused
    /// it). Retrying with the same event is safe: `event_id` makes it idempotent downstream.
    #[error(
        "event {event_id} was not delivered to {brokers} within {timeout:?} (producer.delivery_timeout): {source}"
    )]
    Delivery {
        /// The event that was not delivered.
        event_id: Uuid,
        /// The configured bootstrap brokers.
        brokers: Arc<str>,
        /// The delivery timeout.
        timeout: Duration,
        /// What librdkafka reported.
        #[source]
        source: Box<KafkaError>,
    },
    /// The client refused the message for another reason (for example larger than
    /// `message.max.bytes`). Not retryable as is.
    #[error("the Kafka client refused the event: {0}")]
    Rejected(#[source] Box<KafkaError>),
}

impl EmitError {
    /// Whether sending the same event again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            EmitError::QueueFull { .. } | EmitError::Delivery { .. }
        )
    }
}

/// [`Producer::close`] refused to close.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// Other clones of the producer are still open: nothing was flushed or closed. Drop them
    /// and close this handle again, or `flush` it.
    #[error(
        "cannot close the producer while {clones} other clone(s) of it are open (they could \
         still enqueue); drop them first, or flush instead"
    )]
    Shared {
        /// How many other clones were open.
        clones: usize,
        /// This handle, still usable.
        producer: Producer,
    },
}
