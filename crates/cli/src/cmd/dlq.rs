//! `auditlog dlq`.

use anyhow::Result;
use clap::Args;

use crate::config::Config;

/// Not built yet.
#[derive(Debug, Args)]
pub struct DlqArgs {}

/// Not built yet.
pub async fn run(_cfg: &Config, _args: DlqArgs) -> Result<()> {
    anyhow::bail!("`auditlog dlq` is not built yet")
}
