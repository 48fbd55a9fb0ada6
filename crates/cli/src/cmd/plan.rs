//! `auditlog plan`.

use anyhow::Result;
use clap::Args;

use crate::config::Config;

/// Not built yet.
#[derive(Debug, Args)]
pub struct PlanArgs {}

/// Not built yet.
pub async fn run(_cfg: &Config, _args: PlanArgs) -> Result<()> {
    anyhow::bail!("`auditlog plan` is not built yet")
}
