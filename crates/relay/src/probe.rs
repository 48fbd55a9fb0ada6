//! While there is nothing to send, the broker is asked for the topic's metadata every
//! [`PROBE_EVERY`], so `/health` knows whether the next rows could go out.

use std::sync::Arc;
use std::time::Duration;

use auditlog_producer::KafkaConfig;
use rdkafka::producer::{BaseProducer, Producer as _};

use crate::health::{Health, PROBE_EVERY};

/// Starts the probe task (its own small client, never used to send).
pub fn spawn(
    kafka: &KafkaConfig,
    health: Arc<Health>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client: BaseProducer = kafka
        .client_config()?
        .set("client.id", "auditlog-relay-probe")
        .create()?;
    let client = Arc::new(client);
    let topic = kafka.topic.clone();
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if health.busy() {
                continue;
            }
            let (c, t) = (client.clone(), topic.clone());
            let answer = tokio::task::spawn_blocking(move || {
                c.client()
                    .fetch_metadata(Some(&t), Duration::from_secs(2))
                    .map_err(|e| e.to_string())
                    .and_then(|md| match md.topics().first() {
                        Some(tp) if tp.error().is_none() && !tp.partitions().is_empty() => Ok(()),
                        _ => Err(format!("topic {t} not found")),
                    })
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match answer {
                Ok(()) => health.probed(Ok("answers (idle)")),
                Err(e) => health.probed(Err(format!("broker probe: {e}"))),
            }
        }
    }))
}
