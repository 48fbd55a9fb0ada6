//! `auditlog stream-worker`: delivers every active stream this worker owns to its destination
//! (settings: `[streams]`) until SIGTERM or SIGINT, then finishes the deliveries in flight (at
//! most `streams.shutdown_timeout`), saves the cursors and statuses and exits 0. Several
//! workers share the streams (docs/delivery.md).

use anyhow::{Context as _, Result};
use clap::Args;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;

/// Deliver streams to their destinations until signalled (settings: `[streams]`).
#[derive(Debug, Args)]
pub struct StreamWorkerArgs {
    /// Listen address of `/metrics` and `/health`; overrides `[streams] listen`.
    #[arg(long)]
    pub listen: Option<String>,
}

/// Runs the worker until SIGTERM/SIGINT; `/metrics` renders `prometheus`.
pub async fn run(cfg: &Config, args: StreamWorkerArgs, prometheus: PrometheusHandle) -> Result<()> {
    let mut streams = cfg.streams.clone();
    if let Some(listen) = args.listen {
        streams.listen = listen;
    }
    // A TLS setting ClickHouse refuses, or a layout mismatch, stops startup naming it.
    cfg.clickhouse.check_startup().await?;
    auditlog_deliver::run(
        &streams,
        &cfg.clickhouse,
        prometheus,
        crate::shutdown::signal(),
    )
    .await
    .with_context(|| {
        format!(
            "delivering streams from {}/{}",
            cfg.clickhouse.url, cfg.clickhouse.database
        )
    })
}
