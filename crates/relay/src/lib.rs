//! `auditlog relay` (docs/relay.md): ships committed outbox rows to Kafka.
//!
//! Loop: claim free buckets ([`auditlog_outbox::Outbox::claim`]), publish their rows in
//! `(workspace, seq)` order with the idempotent `acks=all` producer, wait for every
//! acknowledgement, delete what was acknowledged and commit. Woken by PostgreSQL
//! `NOTIFY auditlog_outbox`, or by `relay.poll_interval` on MySQL (and as a safety net on
//! PostgreSQL). A crash between publish and delete republishes the same `event_id`s, which the
//! consumer's deduplication collapses.

pub mod config;

pub use config::RelayConfig;

use std::future::Future;

use auditlog_producer::{KafkaConfig, ProducerConfig};
use metrics_exporter_prometheus::PrometheusHandle;

/// Runs the relay until `shutdown` resolves; then finishes the batch in flight and returns.
pub async fn run(
    cfg: &RelayConfig,
    kafka: &KafkaConfig,
    producer: &ProducerConfig,
    prometheus: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let _ = (cfg, kafka, producer, prometheus, shutdown);
    todo!("relay helper")
}

/// Creates the outbox tables in `cfg.database_url` (`auditlog relay migrate`).
pub async fn migrate(cfg: &RelayConfig) -> anyhow::Result<()> {
    let _ = cfg;
    todo!("relay helper")
}
