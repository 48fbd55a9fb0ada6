//! Library for producing services: validate audit events and publish them to Kafka.
//!
//! ```no_run
//! use std::time::Duration;
//! use auditlog_event::{Actor, AuditEvent, KnownEvent, Target};
//! use auditlog_producer::{KafkaConfig, Producer, ProducerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (kafka, cfg) = (KafkaConfig::default(), ProducerConfig::default());
//! let producer = Producer::builder(&kafka).config(&cfg).build().await?;
//! let event = AuditEvent::builder("ws_3f9a2c", KnownEvent::ApiCreate)
//!     .actor(Actor::user("user_7h2k", "Alice Chen"))
//!     .target(Target::new("api", "api_91ab", "payments"))
//!     .description("Alice Chen created API 'payments'")
//!     .build()?;
//! let delivery = producer.emit(&event).await?; // resolves when the broker acknowledged it
//! println!("written to partition {} at offset {}", delivery.partition, delivery.offset);
//! let report = producer.close(Duration::from_secs(10)).await?; // the last handle: shuts down
//! assert!(report.undelivered.is_empty());
//! # Ok(()) }
//! ```
//!
//! Guarantees: idempotent producer with `acks=all` (retries never duplicate within a
//! partition), message key = `workspace_id` (one workspace's events stay in order), headers
//! `event_type`, `schema_version`, `content_type`. Invalid events never leave the process.
//! Every enqueued event is reported exactly once: acknowledged, or failed (callback, metrics,
//! and the `undelivered` list of the next [`Producer::flush`]).

mod builder;
pub mod config;
mod delivery;
pub mod error;
pub mod kafka_log;
pub mod metrics;
/// The transactional outbox: write events in your own database transaction (features
/// `outbox-postgres`, `outbox-mysql`; docs/outbox.md).
#[cfg(any(feature = "outbox-postgres", feature = "outbox-mysql"))]
pub use auditlog_outbox as outbox;
mod producer;
mod security;

pub use auditlog_event::Prepared;
pub use builder::ProducerBuilder;
pub use config::{
    Compression, ConfigError, KafkaConfig, OnFull, ProducerConfig, SaslMechanism, SecurityProtocol,
};
pub use delivery::{Delivery, DeliveryCallback};
pub use error::{CloseError, EmitError, ProducerError};
pub use producer::{FlushReport, Producer, CONTENT_TYPE};
