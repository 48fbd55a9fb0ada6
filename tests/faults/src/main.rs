//! Fault injection and soak suite (see `tests/faults/run.sh` and `docs/reliability.md`).
//!
//! Starts its own ClickHouse + broker (own ports and data directory), then runs each scenario
//! against fresh topics and a fresh database: two `auditlog consume` processes, `auditlog
//! serve`, several producer processes, query clients, and seeded faults. Prints a summary table,
//! writes it to a Markdown report, and exits non-zero when any scenario failed.

mod apps;
mod emit;
mod flag;
mod load;
mod poison;
mod queries;
mod report;
mod scenario;
mod stack;
mod stats;
mod verify;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;

use crate::load::LoadSpec;
use crate::scenario::{FaultKind, Harness, ScenarioSpec};
use crate::stack::{Ports, Stack};

/// Drives the whole pipeline under load while breaking it, and accounts for every event.
#[derive(Debug, Parser)]
#[command(name = "auditlog-faults")]
struct Args {
    /// The CI form (about 6 minutes); without it, the release form (about 30 minutes).
    #[arg(long)]
    short: bool,
    /// Base seed; scenario i uses seed + i.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Run only the scenarios whose name contains this (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Events per second over all producers (default 150 short, 300 long).
    #[arg(long)]
    rate: Option<u32>,
    /// Latency under which the pipeline counts as recovered after a fault (ms).
    #[arg(long, default_value_t = 3000)]
    latency_threshold_ms: i64,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "RELIABILITY.md")]
    report: PathBuf,
    /// Data directory of the suite's own stack (relative to the workspace root).
    #[arg(long, default_value = ".data/faults")]
    data_dir: PathBuf,
    /// The consumers' Kafka session timeout, seconds (`AUDITLOG_CONSUMER__SESSION_TIMEOUT`;
    /// the consumer's own default is 10). The pause fault lasts this plus 10 s.
    #[arg(long, default_value_t = 10)]
    session_timeout: u64,
    /// Leave the suite's stack running at the end.
    #[arg(long)]
    keep_stack: bool,
    #[arg(long, default_value_t = 48123)]
    ch_http_port: u16,
    #[arg(long, default_value_t = 49000)]
    ch_tcp_port: u16,
    #[arg(long, default_value_t = 49092)]
    kafka_port: u16,
    #[arg(long, default_value_t = 48080)]
    api_port: u16,
    /// First consumer's metrics port; the second uses the next one.
    #[arg(long, default_value_t = 48081)]
    consumer_port: u16,
}

fn scenarios(args: &Args) -> Vec<ScenarioSpec> {
    let short = args.short;
    let rate = args.rate.unwrap_or(if short { 150 } else { 300 });
    let load = |seed: u64| LoadSpec {
        seed,
        producers: 4,
        workspaces_per_producer: 25,
        rate,
    };
    let pick = |s: u64, l: u64| if short { s } else { l };
    let outage = if short {
        FaultKind::StopClickHouse { min: 10, max: 15 }
    } else {
        FaultKind::StopClickHouse { min: 10, max: 60 }
    };
    let pause = FaultKind::PauseConsumer {
        secs: args.session_timeout + 10,
    };
    let poison = FaultKind::PoisonBurst {
        count: if short { 60 } else { 200 },
    };
    let kill = FaultKind::KillConsumer;
    let broker = FaultKind::RestartBroker;
    let mut list = vec![
        (
            "consumer-kill",
            pick(45, 180),
            vec![kill; if short { 2 } else { 4 }],
            false,
        ),
        (
            "broker-restart",
            pick(45, 180),
            vec![broker; if short { 1 } else { 2 }],
            false,
        ),
        (
            "clickhouse-outage",
            pick(55, 240),
            vec![outage; if short { 1 } else { 2 }],
            false,
        ),
        (
            "consumer-pause",
            pick(55, 180),
            vec![pause; if short { 1 } else { 2 }],
            false,
        ),
        (
            "poison-burst",
            pick(40, 120),
            vec![poison; if short { 2 } else { 3 }],
            false,
        ),
    ];
    if !short {
        list.push((
            "chaos",
            360,
            vec![kill, outage, poison, broker, pause, kill, poison],
            false,
        ));
    }
    list.push(("soak", pick(60, 600), Vec::new(), true));
    list.into_iter()
        .enumerate()
        .filter(|(_, (name, ..))| {
            args.only.is_empty() || args.only.iter().any(|o| name.contains(o.as_str()))
        })
        .map(|(i, (name, duration, faults, soak))| ScenarioSpec {
            name,
            seed: args.seed + i as u64,
            duration,
            load: load(args.seed + i as u64),
            faults,
            soak,
            query_clients: 3,
        })
        .collect()
}

/// An error's first line and its last 2 lines (a stack failure carries 30 lines of logs;
/// the full text is printed when it happens).
fn first_and_last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() <= 3 {
        return lines.join(" / ");
    }
    format!(
        "{} / ... / {}",
        lines[0],
        lines[lines.len() - 2..].join(" / ")
    )
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    eprintln!("auditlog-faults: interrupted; stopping");
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FAULTS_LOG")
                .unwrap_or_else(|_| "auditlog_faults=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // `auditlog-faults produce ...`: one producer process of the load (started by the suite).
    if std::env::args().nth(1).as_deref() == Some("produce") {
        let args = load::ProduceArgs::parse_from(std::env::args().skip(1));
        return load::child_main(args).await;
    }
    let args = Args::parse();
    let root = auditlog_testkit::workspace_root();
    let data_dir = if args.data_dir.is_absolute() {
        args.data_dir.clone()
    } else {
        root.join(&args.data_dir)
    };
    let stack = Stack::new(
        Ports {
            ch_http: args.ch_http_port,
            ch_tcp: args.ch_tcp_port,
            kafka: args.kafka_port,
            api: args.api_port,
            consumer: args.consumer_port,
        },
        data_dir.clone(),
    );
    let bin = auditlog_testkit::auditlog_bin();
    anyhow::ensure!(
        bin.exists(),
        "{} not found (set AUDITLOG_BIN or build it)",
        bin.display()
    );
    let run_id = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let harness = Harness {
        stack: stack.clone(),
        bin: bin.clone(),
        consumer_ports: [args.consumer_port, args.consumer_port + 1],
        api_port: args.api_port,
        latency_threshold_ms: args.latency_threshold_ms,
        session_timeout_secs: args.session_timeout,
        log_dir: data_dir.join("logs").join(&run_id),
        run_id,
    };
    let specs = scenarios(&args);
    anyhow::ensure!(
        !specs.is_empty(),
        "no scenario matches --only {:?}",
        args.only
    );

    eprintln!(
        "auditlog-faults: starting the suite's stack from empty data (data {})",
        data_dir.display()
    );
    let s = stack.clone();
    let dir = data_dir.clone();
    tokio::task::spawn_blocking(move || {
        s.down()?;
        for sub in ["clickhouse", "tansu"] {
            let path = dir.join(sub);
            if path.exists() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("remove {}", path.display()))?;
            }
        }
        s.up()
    })
    .await?
    .context("start the suite's stack")?;

    let mut results = Vec::new();
    let mut errors = Vec::new();
    for spec in &specs {
        eprintln!(
            "auditlog-faults: scenario {} (seed {}, {} s of load)",
            spec.name, spec.seed, spec.duration
        );
        // On Ctrl-C / SIGTERM the scenario is dropped: its child processes are killed
        // (kill_on_drop) and the stack is stopped below.
        let outcome = tokio::select! {
            r = scenario::run(&harness, spec) => r,
            _ = interrupted() => {
                errors.push(format!("{}: interrupted", spec.name));
                break;
            }
        };
        match outcome {
            Ok(r) => {
                eprintln!(
                    "auditlog-faults: {} {} ({:.0} s)",
                    r.name,
                    if r.passed() { "passed" } else { "FAILED" },
                    r.wall_secs
                );
                for f in &r.failures {
                    eprintln!("    {f}");
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("auditlog-faults: {} could not run: {e:#}", spec.name);
                errors.push(format!(
                    "{}: {}",
                    spec.name,
                    first_and_last_lines(&format!("{e:#}"))
                ));
                // Make sure the next scenario finds the infrastructure up.
                let s = stack.clone();
                if let Err(e) =
                    tokio::task::spawn_blocking(move || s.down().and_then(|()| s.up())).await?
                {
                    eprintln!("auditlog-faults: restarting the stack failed: {e:#}");
                }
            }
        }
    }
    if !args.keep_stack {
        let s = stack.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || s.down()).await? {
            eprintln!("auditlog-faults: stopping the stack: {e:#}");
        }
    }

    let command = std::env::var("FAULTS_COMMAND").unwrap_or_else(|_| {
        format!(
            "tests/faults/run.sh{}{}",
            if args.short { " --short" } else { "" },
            if args.seed == 7 {
                String::new()
            } else {
                format!(" --seed {}", args.seed)
            }
        )
    });
    let context = format!(
        "Run at {} UTC on {} ({} cores), auditlog binary `{}`; load {} events/s from 4 producer processes over 100 workspaces, \
         2 consumers in one group, 3 API query clients; recovery = seconds after the fault ended until \
         events emitted in 3 consecutive seconds were all visible within {} ms.",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        bin.display(),
        specs.first().map_or(0, |s| s.load.rate),
        args.latency_threshold_ms
    );
    let mut text = report::render(&results, &command, &context);
    for e in &errors {
        text.push_str(&format!("\nERROR (scenario could not run): {e}\n"));
    }
    println!("\n{text}");
    let report_path = if args.report.is_absolute() {
        args.report.clone()
    } else {
        root.join(&args.report)
    };
    if let Some(dir) = report_path.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    let doc = format!(
        "# Reliability\n\nFault-injection and soak results of `auditlog-faults` (what each scenario does and how \
         every number is measured: `docs/reliability.md`).\n\n{text}"
    );
    std::fs::write(&report_path, doc)
        .with_context(|| format!("write {}", report_path.display()))?;
    eprintln!(
        "auditlog-faults: report written to {}",
        report_path.display()
    );

    let passed = results.iter().filter(|r| r.passed()).count();
    let failed = results.len() - passed + errors.len();
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
