//! `auditlog consume`.

use anyhow::Result;
use clap::Args;

use crate::config::Config;

/// Not built yet.
#[derive(Debug, Args)]
pub struct ConsumeArgs {}

/// Not built yet.
pub async fn run(_cfg: &Config, _args: ConsumeArgs) -> Result<()> {
    anyhow::bail!("`auditlog consume` is not built yet")
}
