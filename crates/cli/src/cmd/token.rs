//! `auditlog token`.

use anyhow::Result;
use clap::Args;

use crate::config::Config;

/// Not built yet.
#[derive(Debug, Args)]
pub struct TokenArgs {}

/// Not built yet.
pub async fn run(_cfg: &Config, _args: TokenArgs) -> Result<()> {
    anyhow::bail!("`auditlog token` is not built yet")
}
