//! `auditlog migrate`: create or upgrade the ClickHouse schema.

use anyhow::{Context as _, Result};
use clap::Args;

use crate::config::Config;

/// Apply the embedded ClickHouse schema migrations (idempotent).
#[derive(Debug, Args)]
pub struct MigrateArgs {}

/// Runs the migrations and reports what was applied.
pub async fn run(cfg: &Config, _args: MigrateArgs) -> Result<()> {
    let applied = auditlog_store::migrate(&cfg.clickhouse)
        .await
        .with_context(|| format!("migrating database {}", cfg.clickhouse.database))?;
    if applied.is_empty() {
        println!("schema up to date (database {})", cfg.clickhouse.database);
    } else {
        println!(
            "applied migrations {applied:?} to database {}",
            cfg.clickhouse.database
        );
    }
    Ok(())
}
