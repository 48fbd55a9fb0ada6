//! `auditlog consume`: read the topic as a consumer group and write the events into ClickHouse
//! until SIGTERM or SIGINT, then flush, commit and exit 0.

use anyhow::{Context as _, Result};
use clap::Args;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;

/// Consume the audit topic into ClickHouse until signalled (settings: `[consumer]`).
#[derive(Debug, Args)]
pub struct ConsumeArgs {}

/// Runs the consumer until SIGTERM/SIGINT.
/// `prometheus` renders `/metrics`.
pub async fn run(cfg: &Config, _args: ConsumeArgs, prometheus: PrometheusHandle) -> Result<()> {
    let summary = auditlog_sink::run(
        &cfg.kafka,
        &cfg.clickhouse,
        &cfg.consumer,
        prometheus,
        crate::shutdown::signal(),
    )
    .await
    .with_context(|| {
        format!(
            "consuming {} from {} into {}/{}",
            cfg.kafka.topic, cfg.kafka.brokers, cfg.clickhouse.url, cfg.clickhouse.database
        )
    })?;
    tracing::info!(
        consumed = summary.consumed,
        inserted = summary.inserted,
        dead_lettered = summary.dead_lettered,
        "done"
    );
    Ok(())
}
