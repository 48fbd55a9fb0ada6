//! `auditlog emit`: publish events from NDJSON (a file or stdin) or synthetic ones.
//!
//! Every line is decoded and validated on its own: a bad line is reported with its number and
//! field and never stops the good ones (unless `--strict`, which checks the whole input first
//! and sends nothing if any line is bad). Exits non-zero when any line was invalid or any
//! event was not delivered.

use std::io::{BufRead, BufReader, IsTerminal as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_event::{decode_with_defaults, AuditEvent, DecodeError};
use auditlog_producer::Producer;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;

/// Publish audit events to the topic.
#[derive(Debug, Args)]
pub struct EmitArgs {
    /// NDJSON file, one event per line (`-` = stdin; stdin is also the default without
    /// `--synthetic`). `event_id`, `version` and `time` may be left out: they are filled in.
    #[arg(long, short, value_name = "PATH", conflicts_with = "synthetic")]
    pub file: Option<PathBuf>,
    /// Generate N realistic synthetic events (every catalog type, many actors).
    #[arg(long, value_name = "N")]
    pub synthetic: Option<u64>,
    /// Workspaces the synthetic events are spread over.
    #[arg(long, value_name = "W", default_value_t = 10)]
    pub workspaces: usize,
    /// Seed of the synthetic generator (same seed, same events apart from `now`).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Spread synthetic event times over the last D days (0 = now).
    #[arg(long, value_name = "D", default_value_t = 0)]
    pub days: u32,
    /// Send at most R events per second.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Check every input line first; send nothing if any is invalid.
    #[arg(long)]
    pub strict: bool,
}

/// One input item: its line number (for files) and the decoded event or why not.
type Item = (Option<usize>, Result<AuditEvent, DecodeError>);

#[derive(Default)]
struct Tally {
    acked: AtomicU64,
    failed: AtomicU64,
}

/// Runs `auditlog emit`.
pub async fn run(cfg: &Config, args: EmitArgs) -> Result<()> {
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate > 0.0, "--rate must be positive");
    }
    let (total, items) = source(&args)?;
    let items: Box<dyn Iterator<Item = Item>> = if args.strict {
        let all: Vec<Item> = items.collect();
        let bad = invalid_lines(&all);
        if !bad.is_empty() {
            for line in &bad {
                eprintln!("{line}");
            }
            anyhow::bail!("--strict: {} invalid line(s), nothing sent", bad.len());
        }
        Box::new(all.into_iter())
    } else {
        items
    };

    // No broker to talk to: say so first, in one line, before librdkafka starts retrying.
    crate::preflight::brokers(&cfg.kafka).await?;
    let tally = Arc::new(Tally::default());
    let seen = Arc::clone(&tally);
    let producer = Producer::builder(&cfg.kafka)
        .config(&cfg.producer)
        .on_delivery(move |r| {
            let counter = if r.is_ok() { &seen.acked } else { &seen.failed };
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .await
        .with_context(|| format!("connecting to Kafka at {}", cfg.kafka.brokers))?;

    let progress = progress_bar(total);
    let started = Instant::now();
    let mut last_log = Instant::now();
    let (mut sent, mut invalid, mut refused) = (0u64, Vec::new(), 0u64);
    for (i, (line, item)) in items.enumerate() {
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        match item {
            // A full buffer: wait for room or fail the line, as `producer.on_full` says.
            Ok(event) => match producer.enqueue(&event, cfg.producer.on_full).await {
                Ok(()) => sent += 1,
                Err(e) => {
                    refused += 1;
                    progress.suspend(|| eprintln!("{}: {e}", where_(line, &event)));
                }
            },
            Err(e) => {
                let msg = describe(line, &e);
                progress.suspend(|| eprintln!("{msg}"));
                invalid.push(msg);
            }
        }
        progress.inc(1);
        if progress.is_hidden() && last_log.elapsed() >= Duration::from_secs(5) {
            last_log = Instant::now();
            tracing::info!(
                sent,
                acked = tally.acked.load(Ordering::Relaxed),
                failed = tally.failed.load(Ordering::Relaxed),
                invalid = invalid.len(),
                rate = format!("{:.0}/s", sent as f64 / started.elapsed().as_secs_f64()),
                "emit progress"
            );
        }
    }
    progress.set_message("waiting for acknowledgements");
    let report = producer
        .close(cfg.producer.delivery_timeout + Duration::from_secs(5))
        .await?;
    progress.finish_and_clear();

    let took = started.elapsed();
    let acked = tally.acked.load(Ordering::Relaxed);
    tracing::info!(
        sent,
        acked,
        invalid = invalid.len(),
        undelivered = report.undelivered.len(),
        seconds = took.as_secs_f64(),
        "emit done"
    );
    eprintln!(
        "emitted {acked} events to {} in {:.1}s ({:.0}/s); {} invalid line(s), {} refused, {} undelivered",
        cfg.kafka.topic,
        took.as_secs_f64(),
        acked as f64 / took.as_secs_f64().max(1e-9),
        invalid.len(),
        refused,
        report.undelivered.len()
    );
    for id in report.undelivered.iter().take(20) {
        eprintln!("undelivered: {id}");
    }
    if !invalid.is_empty() || refused > 0 || !report.undelivered.is_empty() {
        anyhow::bail!(
            "{} invalid line(s), {} refused, {} undelivered event(s)",
            invalid.len(),
            refused,
            report.undelivered.len()
        );
    }
    Ok(())
}

/// The events to send and how many there are (when known).
fn source(args: &EmitArgs) -> Result<(Option<u64>, Box<dyn Iterator<Item = Item>>)> {
    if let Some(n) = args.synthetic {
        anyhow::ensure!(args.workspaces > 0, "--workspaces must be at least 1");
        let synth = Synth::new(
            SynthConfig {
                seed: args.seed,
                workspaces: args.workspaces,
                ..SynthConfig::default()
            }
            .over_days(args.days),
        );
        let n_usize = usize::try_from(n).unwrap_or(usize::MAX);
        return Ok((
            Some(n),
            Box::new(synth.take(n_usize).map(|e| (None, Ok(e)))),
        ));
    }
    let reader: Box<dyn BufRead> = match &args.file {
        Some(p) if p.as_os_str() != "-" => Box::new(BufReader::new(
            std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
        _ => Box::new(BufReader::new(std::io::stdin())),
    };
    let lines = reader.split(b'\n').enumerate().filter_map(|(i, line)| {
        let number = Some(i + 1);
        match line {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => None,
            Ok(bytes) => Some((number, decode_with_defaults(trim_cr(&bytes)))),
            Err(e) => Some((
                number,
                Err(DecodeError::NotJson(format!("read error: {e}"))),
            )),
        }
    });
    Ok((None, Box::new(lines)))
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn invalid_lines(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|(line, r)| r.as_ref().err().map(|e| describe(*line, e)))
        .collect()
}

/// `line 17: targets[0].id: is required and must not be empty (invalid_field)`.
fn describe(line: Option<usize>, e: &DecodeError) -> String {
    let at = line.map_or_else(|| "event".to_owned(), |n| format!("line {n}"));
    format!("{at}: {e} ({})", e.code())
}

fn where_(line: Option<usize>, event: &AuditEvent) -> String {
    line.map_or_else(
        || format!("event {}", event.event_id),
        |n| format!("line {n} (event {})", event.event_id),
    )
}

/// A bar on a terminal; hidden otherwise (progress is then logged every 5 s).
fn progress_bar(total: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {pos} events ({per_sec}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
