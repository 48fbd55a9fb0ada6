//! `auditlog keygen`: a new Ed25519 key for a log (checkpoints) or a witness (cosignatures).

use anyhow::Result;
use clap::Args;

/// Generate a signing key file and print its verifier key.
#[derive(Debug, Args)]
pub struct KeygenArgs {}

/// Writes the key file.
pub fn run(args: KeygenArgs) -> Result<()> {
    let _ = args;
    anyhow::bail!("auditlog keygen: not built yet")
}
