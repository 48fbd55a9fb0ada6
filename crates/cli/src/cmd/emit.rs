//! `auditlog emit`.

use anyhow::Result;
use clap::Args;

use crate::config::Config;

/// Not built yet.
#[derive(Debug, Args)]
pub struct EmitArgs {}

/// Not built yet.
pub async fn run(_cfg: &Config, _args: EmitArgs) -> Result<()> {
    anyhow::bail!("`auditlog emit` is not built yet")
}
