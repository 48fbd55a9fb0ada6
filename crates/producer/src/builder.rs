//! Building a [`Producer`]: the settings, the optional delivery callback, the librdkafka client
//! and the startup check that the broker answers and the topic exists.

use std::sync::Arc;
use std::time::Duration;

use auditlog_event::limits::MAX_EVENT_BYTES;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{Producer as _, ThreadedProducer};

use crate::config::{ConfigError, KafkaConfig, ProducerConfig};
use crate::delivery::{Delivery, DeliveryCallback, DeliveryContext};
use crate::error::{EmitError, ProducerError};
use crate::metrics::Metrics;
use crate::producer::Producer;

/// Settings of a [`Producer`] to build, from [`Producer::builder`].
///
/// ```no_run
/// # use auditlog_producer::{KafkaConfig, Producer, ProducerConfig};
/// # async fn run(kafka: KafkaConfig, cfg: ProducerConfig) -> Result<(), auditlog_producer::ProducerError> {
/// let producer = Producer::builder(&kafka)
///     .config(&cfg)
///     .on_delivery(|outcome| {
///         if let Err(e) = outcome {
///             eprintln!("{e}");
///         }
///     })
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct ProducerBuilder<'a> {
    kafka: &'a KafkaConfig,
    config: Option<&'a ProducerConfig>,
    callback: Option<DeliveryCallback>,
}

impl std::fmt::Debug for ProducerBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("kafka", self.kafka)
            .field("config", &self.config)
            .field("on_delivery", &self.callback.is_some())
            .finish()
    }
}

impl<'a> ProducerBuilder<'a> {
    pub(crate) fn new(kafka: &'a KafkaConfig) -> Self {
        Self {
            kafka,
            config: None,
            callback: None,
        }
    }

    /// Producer tuning (`[producer]`). Default [`ProducerConfig::default`].
    pub fn config(mut self, config: &'a ProducerConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Calls `callback` with the outcome of every enqueued event, acknowledged or failed, on
    /// the client's polling thread: keep it short (send to a channel, bump a counter). Without
    /// it, outcomes are reported through metrics (and `emit`'s answer) only.
    pub fn on_delivery(
        mut self,
        callback: impl Fn(&Result<Delivery, EmitError>) + Send + Sync + 'static,
    ) -> Self {
        self.callback = Some(Arc::new(callback));
        self
    }

    /// The librdkafka settings the producer's client is created with: the connection's
    /// ([`KafkaConfig::client_config`]: brokers, TLS, SASL), the producer's (idempotence,
    /// `acks=all`, compression, buffer, timeouts), then the caller's `properties` (reserved
    /// ones refused by validation). For inspection, or a baseline client with the very same
    /// settings (the throughput benchmark).
    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        client_config(self.kafka, &self.producer_config())
    }

    /// Validates the settings, creates the client and checks that the topic exists, failing
    /// after `startup_timeout` when no broker answers.
    pub async fn build(self) -> Result<Producer, ProducerError> {
        let (kafka, cfg) = (self.kafka, self.producer_config());
        kafka.validate()?;
        cfg.validate()?;
        let context = DeliveryContext {
            metrics: Metrics::new(),
            callback: self.callback,
            brokers: Arc::from(kafka.brokers.as_str()),
            delivery_timeout: cfg.delivery_timeout,
            delivered: Default::default(),
            undelivered: Default::default(),
        };
        let client: ThreadedProducer<DeliveryContext> = client_config(kafka, &cfg)?
            .create_with_context(context)
            .map_err(ProducerError::Client)?;
        check_topic(&client, kafka, cfg.startup_timeout).await?;
        tracing::info!(brokers = %kafka.brokers, topic = %kafka.topic, "audit producer ready");
        Ok(Producer::from_client(client, kafka.topic.clone(), cfg))
    }

    fn producer_config(&self) -> ProducerConfig {
        self.config.cloned().unwrap_or_default()
    }
}

fn client_config(kafka: &KafkaConfig, cfg: &ProducerConfig) -> Result<ClientConfig, ConfigError> {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_client_gets_the_guarantees_the_tuning_and_the_caller_properties() {
        let kafka = KafkaConfig {
            brokers: "b1:9092,b2:9092".into(),
            ..KafkaConfig::default()
        };
        let cfg = ProducerConfig {
            buffer_capacity: 7,
            delivery_timeout: Duration::from_secs(3),
            properties: BTreeMap::from([("batch.size".to_owned(), "1000".to_owned())]),
            ..ProducerConfig::default()
        };
        let c = Producer::builder(&kafka)
            .config(&cfg)
            .client_config()
            .unwrap();
        assert_eq!(c.get("bootstrap.servers"), Some("b1:9092,b2:9092"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("queue.buffering.max.messages"), Some("7"));
        assert_eq!(c.get("message.timeout.ms"), Some("3000"));
        assert_eq!(c.get("batch.size"), Some("1000"));
        // Without `config`, the defaults.
        let d = Producer::builder(&kafka).client_config().unwrap();
        assert_eq!(d.get("queue.buffering.max.messages"), Some("100000"));
        assert_eq!(d.get("compression.type"), Some("lz4"));
    }
}
