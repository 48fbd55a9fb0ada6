//! `auditlog`: the one binary users run. Subcommands per job; see `auditlog --help`.

mod cmd;
mod config;
#[cfg(test)]
mod monitoring_tests;
mod preflight;
mod process_metrics;
mod recorder;
mod shutdown;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Deliver streams (webhooks, Splunk, Datadog, S3) at least once, in order.
    StreamWorker(cmd::stream_worker::StreamWorkerArgs),
    /// Append stored events to their workspaces' tamper-evident logs and sign checkpoints.
    Sequencer(cmd::sequencer::SequencerArgs),
    /// Cosign checkpoints consistent with the last one seen (C2SP tlog-witness).
    Witness(cmd::witness::WitnessArgs),
    /// Verify exports, proofs and checkpoints offline, or a whole workspace through the API.
    Verify(Box<cmd::verify::VerifyArgs>),
    /// Ship the transactional outbox (PostgreSQL, MySQL) to Kafka; `relay migrate` creates it.
    Relay(cmd::relay::RelayArgs),
    /// Generate an Ed25519 key for a log's checkpoints or a witness's cosignatures.
    Keygen(cmd::keygen::KeygenArgs),
    /// Create or upgrade the ClickHouse schema (idempotent).
    Migrate(cmd::migrate::MigrateArgs),
    /// Read or set a workspace's plan (retention).
    Plan(cmd::plan::PlanArgs),
    /// Create, list or revoke workspace API tokens.
    Token(cmd::token::TokenArgs),
    /// Create, list, pause, resume, replay or delete push streams (webhook, Splunk, Datadog, S3).
    Stream(cmd::stream::StreamArgs),
    /// Inspect and replay the dead-letter topic.
    Dlq(cmd::dlq::DlqArgs),
    /// Print every setting at its default as documented TOML (`--defaults`).
    Config(cmd::config::ConfigArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let command = match cli.command {
        Command::Config(a) => return cmd::config::run(&a),
        // Neither needs the configuration file: a customer runs them on their own machine.
        Command::Verify(a) => std::process::exit(cmd::verify::run(*a).await),
        Command::Keygen(a) => return cmd::keygen::run(a),
        other => other,
    };
    let cfg = Config::load(cli.config.as_deref())?;
    init_tracing(&cfg.log);
    match command {
        Command::Emit(a) => cmd::emit::run(&cfg, a).await,
        Command::Consume(a) => {
            // The recorder `/metrics` renders, installed before anything records.
            let prometheus = recorder::install()?;
            process_metrics::install("consume");
            cmd::consume::run(&cfg, a, prometheus).await
        }
        Command::Serve(a) => {
            let prometheus = recorder::install()?;
            process_metrics::install("serve");
            cmd::serve::run(&cfg, a, prometheus).await
        }
        Command::StreamWorker(a) => {
            let prometheus = recorder::install()?;
            process_metrics::install("stream-worker");
            cmd::stream_worker::run(&cfg, a, prometheus).await
        }
        Command::Sequencer(a) => {
            let prometheus = recorder::install()?;
            process_metrics::install("sequencer");
            cmd::sequencer::run(&cfg, a, prometheus).await
        }
        Command::Witness(a) => {
            let prometheus = recorder::install()?;
            process_metrics::install("witness");
            cmd::witness::run(&cfg, a, prometheus).await
        }
        Command::Relay(a) => {
            let prometheus = recorder::install()?;
            process_metrics::install("relay");
            cmd::relay::run(&cfg, a, prometheus).await
        }
        Command::Migrate(a) => cmd::migrate::run(&cfg, a).await,
        Command::Plan(a) => cmd::plan::run(&cfg, a).await,
        Command::Token(a) => cmd::token::run(&cfg, a).await,
        Command::Stream(a) => cmd::stream::run(&cfg, a).await,
        Command::Dlq(a) => cmd::dlq::run(&cfg, a).await,
        Command::Config(_) | Command::Verify(_) | Command::Keygen(_) => {
            unreachable!("handled above")
        }
    }
}

/// The error and its causes on one line, `: `-separated, leaving out a cause whose text an
/// earlier one already contains (errors that print their source, as many do, would otherwise
/// say everything twice).
fn error_chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

fn init_tracing(log: &config::LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    // Colour only on a terminal (log files and collectors get plain text), and never with
    // NO_COLOR set.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("no Kafka broker at b:1 answered: {source}")]
    struct Repeats {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_its_parent_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = anyhow::Error::new(Repeats { source: io }).context("connecting to Kafka");
        assert_eq!(
            error_chain(&e),
            "connecting to Kafka: no Kafka broker at b:1 answered: connection refused"
        );
        // Causes that do not repeat each other are all kept.
        let e = anyhow::anyhow!("root cause")
            .context("middle")
            .context("top");
        assert_eq!(error_chain(&e), "top: middle: root cause");
    }
}
