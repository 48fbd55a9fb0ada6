//! `auditlog sequencer`: builds every workspace's log (settings: `[sequencer]`).

use anyhow::Result;
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
    let _ = (cfg, args, prometheus);
    anyhow::bail!("auditlog sequencer: not built yet")
}
