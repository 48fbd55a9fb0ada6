//! `auditlog serve`.

use anyhow::Result;
use clap::Args;

use crate::config::Config;

/// Not built yet.
#[derive(Debug, Args)]
pub struct ServeArgs {}

/// Not built yet.
pub async fn run(_cfg: &Config, _args: ServeArgs) -> Result<()> {
    anyhow::bail!("`auditlog serve` is not built yet")
}
