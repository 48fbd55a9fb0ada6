//! `auditlog`: the one binary users run. Subcommands per job; see `auditlog --help`.

mod cmd;
mod config;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use config::Config;

/// Audit-log pipeline: publish mutation events to Kafka, ingest them into ClickHouse, serve them.
#[derive(Debug, Parser)]
#[command(name = "auditlog", version, about, long_about = None)]
struct Cli {
    /// TOML configuration file. Environment variables `AUDITLOG_<SECTION>__<FIELD>` override it.
    #[arg(long, short, global = true, env = "AUDITLOG_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish audit events (NDJSON from a file or stdin, or synthetic ones) to the topic.
    Emit(cmd::emit::EmitArgs),
    /// Consume the topic and write the events into ClickHouse.
    Consume(cmd::consume::ConsumeArgs),
    /// Serve the query API and the dashboard.
    Serve(cmd::serve::ServeArgs),
    /// Create or upgrade the ClickHouse schema (idempotent).
    Migrate(cmd::migrate::MigrateArgs),
    /// Read or set a workspace's plan (retention).
    Plan(cmd::plan::PlanArgs),
    /// Create, list or revoke workspace API tokens.
    Token(cmd::token::TokenArgs),
    /// Inspect and replay the dead-letter topic.
    Dlq(cmd::dlq::DlqArgs),
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let cfg = Config::load(cli.config.as_deref())?;
    init_tracing(&cfg.log);
    match cli.command {
        Command::Emit(a) => cmd::emit::run(&cfg, a).await,
        Command::Consume(a) => cmd::consume::run(&cfg, a).await,
        Command::Serve(a) => cmd::serve::run(&cfg, a).await,
        Command::Migrate(a) => cmd::migrate::run(&cfg, a).await,
        Command::Plan(a) => cmd::plan::run(&cfg, a).await,
        Command::Token(a) => cmd::token::run(&cfg, a).await,
        Command::Dlq(a) => cmd::dlq::run(&cfg, a).await,
    }
}

fn init_tracing(log: &config::LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}
