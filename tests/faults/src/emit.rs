//! One producer client for the load (the `auditlog_producer` library, as a producing service
//! would use it): emits an event and resolves on the broker's acknowledgement with the
//! partition and offset it was stored at.

use std::time::Duration;

use anyhow::{Context as _, Result};
use auditlog_event::AuditEvent;
use auditlog_producer::{KafkaConfig, Producer, ProducerConfig};

/// A producer client (one per load task).
pub struct Emitter {
    inner: Producer,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter").finish_non_exhaustive()
    }
}

impl Emitter {
    /// A producer for `topic` that keeps retrying an event for 2 minutes (so a broker restart
    /// delays acknowledgements instead of failing them).
    pub async fn new(brokers: &str, topic: &str) -> Result<Self> {
        let kafka = KafkaConfig {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            ..KafkaConfig::default()
        };
        let cfg = ProducerConfig {
            delivery_timeout: Duration::from_secs(120),
            // Batches of ~50 ms: far fewer produce requests for the broker to handle.
            linger: Duration::from_millis(50),
            client_id: "auditlog-faults".into(),
            ..ProducerConfig::default()
        };
        let inner = Producer::builder(&kafka)
            .config(&cfg)
            .build()
            .await
            .context("create producer")?;
        Ok(Self { inner })
    }

    /// Emits and waits for the acknowledgement: `(partition, offset)`.
    pub async fn emit(&self, event: AuditEvent) -> Result<(i32, i64)> {
        let d = self.inner.emit(&event).await?;
        Ok((d.partition, d.offset))
    }

    /// Waits for everything still in flight (at most 30 s).
    pub async fn close(self) {
        let _ = self.inner.close(Duration::from_secs(30)).await;
    }
}
