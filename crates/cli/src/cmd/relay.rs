//! `auditlog relay`: ships the transactional outbox to Kafka (settings: `[relay]`,
//! docs/relay.md) until SIGTERM or SIGINT; `auditlog relay migrate` creates the outbox tables.

use anyhow::Result;
use clap::{Args, Subcommand};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;

/// Ship committed outbox rows to Kafka until signalled.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The outbox database URL; overrides `[relay] database_url`.
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
    /// Listen address of `/metrics` and `/health`; overrides `[relay] listen`.
    #[arg(long, global = true)]
    pub listen: Option<String>,
    #[command(subcommand)]
    pub command: Option<RelayCommand>,
}

/// What else `auditlog relay` does.
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Create the outbox tables in the database (idempotent) and exit.
    Migrate,
}

/// Runs `auditlog relay` (or `auditlog relay migrate`).
pub async fn run(cfg: &Config, args: RelayArgs, prometheus: PrometheusHandle) -> Result<()> {
    let mut relay = cfg.relay.clone();
    if let Some(url) = args.database_url {
        relay.database_url = url;
    }
    if let Some(listen) = args.listen {
        relay.listen = listen;
    }
    match args.command {
        Some(RelayCommand::Migrate) => auditlog_relay::migrate(&relay).await,
        None => {
            auditlog_relay::run(
                &relay,
                &cfg.kafka.connection,
                &cfg.producer,
                prometheus,
                crate::shutdown::signal(),
            )
            .await
        }
    }
}
