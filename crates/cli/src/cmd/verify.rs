//! `auditlog verify`: offline and online verification of workspace logs.

use anyhow::Result;
use clap::Args;

/// Verify an export, a proof, two checkpoints, or a whole workspace through the API.
#[derive(Debug, Args)]
pub struct VerifyArgs {}

/// Runs the verification; an error (exit 1) when anything fails.
pub async fn run(args: VerifyArgs) -> Result<()> {
    let _ = args;
    anyhow::bail!("auditlog verify: not built yet")
}
