//! `auditlog sequencer`: builds every workspace's log (settings: `[sequencer]`,
//! docs/integrity.md): appends each stored event to its workspace's Merkle log, signs
//! checkpoints and sends them to the witnesses, until SIGTERM or SIGINT; then finishes the
//! step in progress, signs a last round and exits 0.

use anyhow::{Context as _, Result};
use clap::Args;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;

/// Append stored events to their workspace logs and sign checkpoints until signalled.
#[derive(Debug, Args)]
pub struct SequencerArgs {
    /// Listen address of `/metrics` and `/health`; overrides `[sequencer] listen`.
    #[arg(long)]
    pub listen: Option<String>,
}

/// Runs the sequencer until SIGTERM/SIGINT.
pub async fn run(cfg: &Config, args: SequencerArgs, prometheus: PrometheusHandle) -> Result<()> {
    let mut sequencer = cfg.sequencer.clone();
    if let Some(listen) = args.listen {
        sequencer.listen = listen;
    }
    // A TLS setting ClickHouse refuses, or a layout mismatch, stops startup naming it.
    cfg.clickhouse.check_startup().await?;
    auditlog_sequencer::run(
        &sequencer,
        &cfg.clickhouse,
        prometheus,
        crate::shutdown::signal(),
    )
    .await
    .with_context(|| {
        format!(
            "sequencing {}/{}",
            cfg.clickhouse.url, cfg.clickhouse.database
        )
    })
}
