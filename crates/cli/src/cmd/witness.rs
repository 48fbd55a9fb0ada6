//! `auditlog witness`: cosigns consistent checkpoints (settings: `[witness]`).

use anyhow::Result;
use clap::Args;

use crate::config::Config;

/// Serve the witness (C2SP tlog-witness) until signalled.
#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// Listen address; overrides `[witness] listen`.
    #[arg(long)]
    pub listen: Option<String>,
}

/// Runs the witness until SIGTERM/SIGINT.
pub async fn run(cfg: &Config, args: WitnessArgs) -> Result<()> {
    let _ = (cfg, args);
    anyhow::bail!("auditlog witness: not built yet")
}
