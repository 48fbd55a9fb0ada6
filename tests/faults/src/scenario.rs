//! One scenario: a fresh topic, dead-letter topic and database; two consumers and the API;
//! steady load and query load; faults at seeded moments; then the accounting.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_testkit::create_topic_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::apps::{App, AppEnv};
use crate::flag::CancelFlag;
use crate::load::{workspaces_of, Load, LoadSpec};
use crate::poison::{check_dlq, DlqCheck, PoisonProducer};
use crate::queries::{judge, ApiVerdict, Queries};
use crate::stack::Stack;
use crate::stats::{latency_percentiles, recovery_secs, MemSeries, MemTrend};
use crate::verify::{account, drain, Accounting};

/// A fault kind; the moment (and the details) come from the scenario's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL a consumer, start it again.
    KillConsumer,
    /// SIGKILL the broker and start it again.
    RestartBroker,
    /// Stop ClickHouse for `min..=max` seconds.
    StopClickHouse { min: u64, max: u64 },
    /// SIGSTOP a consumer for this many seconds (past its session timeout), then SIGCONT.
    PauseConsumer { secs: u64 },
    /// Publish this many poison messages.
    PoisonBurst { count: usize },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ScenarioSpec {
    pub name: &'static str,
    pub seed: u64,
    /// Seconds of load.
    pub duration: u64,
    pub load: LoadSpec,
    pub faults: Vec<FaultKind>,
    /// Soak: judge the memory trend.
    pub soak: bool,
    /// Number of query clients (one workspace token each).
    pub query_clients: usize,
}

/// What the suite needs to run scenarios.
#[derive(Debug, Clone)]
pub struct Harness {
    pub stack: Stack,
    pub bin: std::path::PathBuf,
    pub consumer_ports: [u16; 2],
    pub api_port: u16,
    pub latency_threshold_ms: i64,
    /// The consumers' session timeout, seconds.
    pub session_timeout_secs: u64,
    pub log_dir: std::path::PathBuf,
    pub run_id: String,
}

/// One fault as it happened.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    pub label: String,
    /// Scenario seconds.
    pub start: f64,
    pub end: f64,
    pub recovery_secs: Option<u64>,
}

/// Everything a scenario measured.
#[derive(Debug)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub seed: u64,
    pub accounting: Accounting,
    pub poison_published: u64,
    pub dlq: Option<DlqCheck>,
    pub api: ApiVerdict,
    pub faults: Vec<FaultRecord>,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub consumer_peak_rss: u64,
    pub api_peak_rss: u64,
    pub memory: Vec<MemTrend>,
    pub drain_secs: f64,
    pub failures: Vec<String>,
    pub wall_secs: f64,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Seeded fault moments: fault `i` of `n` lands at a random point of slot `i` of the window
/// from 15% to 60% of the load, so every fault ends with load left to measure recovery.
fn schedule(spec: &ScenarioSpec, rng: &mut StdRng) -> Vec<(f64, FaultKind)> {
    let n = spec.faults.len().max(1) as f64;
    let (lo, hi) = (spec.duration as f64 * 0.15, spec.duration as f64 * 0.6);
    let slot = (hi - lo) / n;
    spec.faults
        .iter()
        .enumerate()
        .map(|(i, f)| (lo + slot * i as f64 + rng.random_range(0.0..slot * 0.5), *f))
        .collect()
}

/// PIDs the memory sampler reads: consumer 1, consumer 2, API.
type Pids = Arc<Mutex<[Option<u32>; 3]>>;

fn set_pids(pids: &Pids, consumers: &[App; 2], api: &App) {
    let mut p = pids.lock().unwrap_or_else(|p| p.into_inner());
    *p = [consumers[0].pid(), consumers[1].pid(), api.pid()];
}

/// Runs one scenario; infrastructure errors are `Err`, findings are in the result.
pub async fn run(h: &Harness, spec: &ScenarioSpec) -> Result<ScenarioResult> {
    let wall = Instant::now();
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let base = format!("faults_{}_{}", spec.name.replace('-', "_"), h.run_id);
    let brokers = h.stack.brokers();
    let env = AppEnv {
        bin: h.bin.clone(),
        brokers: brokers.clone(),
        topic: base.clone(),
        dlq_topic: format!("{base}_dlq"),
        clickhouse_url: h.stack.clickhouse_url(),
        database: base.clone(),
        group_id: format!("{base}_group"),
        admin_token: format!("adm_faults_{}", h.run_id),
        session_timeout_secs: h.session_timeout_secs,
        log_dir: h.log_dir.join(spec.name),
    };
    create_topic_on(&brokers, &env.topic, 6).await?;
    create_topic_on(&brokers, &env.dlq_topic, 1).await?;
    env.migrate().await?;
    let ch = auditlog_store::ClickHouseConfig {
        url: env.clickhouse_url.clone(),
        database: env.database.clone(),
        ..Default::default()
    }
    .client();

    let mut consumers = [
        App::consumer(
            "consumer-1",
            &env,
            format!("127.0.0.1:{}", h.consumer_ports[0]),
        ),
        App::consumer(
            "consumer-2",
            &env,
            format!("127.0.0.1:{}", h.consumer_ports[1]),
        ),
    ];
    for c in &mut consumers {
        c.start().await?;
    }
    let mut api = App::api(&env, format!("127.0.0.1:{}", h.api_port));
    api.start().await?;
    let mut tokens = Vec::new();
    for task in 0..spec.query_clients.min(spec.load.producers) {
        if let Some(ws) = workspaces_of(&spec.load, task).into_iter().next() {
            tokens.push((ws.clone(), env.create_token(&ws).await?));
        }
    }

    let pids: Pids = Arc::default();
    set_pids(&pids, &consumers, &api);
    let t0 = Instant::now();
    let t0_ms = chrono::Utc::now().timestamp_millis();
    let sampler_stop = CancelFlag::default();
    let sampler = tokio::spawn(sample_memory(pids.clone(), sampler_stop.clone()));

    let load = Load::start(&spec.load, &brokers, &env.topic)?;
    let queries = Queries::start(&api.base_url(), tokens, spec.seed, t0);
    let mut poison = PoisonProducer::new(&brokers, &env.topic)?;
    let valid = Synth::new(SynthConfig {
        seed: spec.seed,
        ..SynthConfig::default()
    })
    .next_event();

    let mut failures = Vec::new();
    let mut faults = Vec::new();
    let mut outages = Vec::new();
    for (at, kind) in schedule(spec, &mut rng) {
        sleep_until(t0, at).await;
        let start = t0.elapsed().as_secs_f64();
        let label = match kind {
            FaultKind::KillConsumer => {
                let i = rng.random_range(0..2);
                consumers[i].kill_and_restart().await?;
                format!("SIGKILL consumer-{} + restart", i + 1)
            }
            FaultKind::RestartBroker => {
                h.stack.crash_broker();
                let starts = h.stack.start_until_stable("broker").await?;
                if starts > 1 {
                    format!(
                        "broker SIGKILL + restart ({starts} starts: the broker crashed on restart)"
                    )
                } else {
                    "broker SIGKILL + restart".to_string()
                }
            }
            FaultKind::StopClickHouse { min, max } => {
                let secs = rng.random_range(min..=max);
                h.stack.stop("clickhouse").await?;
                tokio::time::sleep(Duration::from_secs(secs)).await;
                let starts = h.stack.start_until_stable("clickhouse").await?;
                outages.push((start, t0.elapsed().as_secs_f64()));
                if starts > 1 {
                    format!("ClickHouse down {secs} s ({starts} starts)")
                } else {
                    format!("ClickHouse down {secs} s")
                }
            }
            FaultKind::PauseConsumer { secs } => {
                let i = rng.random_range(0..2);
                consumers[i].signal_pause(true).await?;
                tokio::time::sleep(Duration::from_secs(secs)).await;
                consumers[i].signal_pause(false).await?;
                format!("SIGSTOP consumer-{} {secs} s", i + 1)
            }
            FaultKind::PoisonBurst { count } => {
                poison.burst(count, &valid).await;
                format!("{count} poison messages")
            }
        };
        set_pids(&pids, &consumers, &api);
        let end = t0.elapsed().as_secs_f64();
        tracing::info!(
            scenario = spec.name,
            "fault: {label} ({start:.1}s..{end:.1}s)"
        );
        faults.push(FaultRecord {
            label,
            start,
            end,
            recovery_secs: None,
        });
    }
    sleep_until(t0, spec.duration as f64).await;
    let ledger = load.stop().await?;
    let samples = queries.stop().await;
    for c in &mut consumers {
        if let Some(status) = c.exited() {
            failures.push(format!("{} exited on its own with {status}", c.name));
            c.start().await?;
        }
    }

    let acked = ledger.acked.len() as u64;
    let drain_secs = drain(
        &ch,
        acked,
        Duration::from_secs(240),
        Duration::from_secs(60),
    )
    .await
    .as_secs_f64();
    let dlq = if poison.published.is_empty() && poison.refused.is_empty() {
        None
    } else {
        Some(
            check_dlq(
                &brokers,
                &env.dlq_topic,
                &poison.published,
                Duration::from_secs(60),
            )
            .await?,
        )
    };
    sampler_stop.cancel();
    let mem = sampler.await?;
    for c in &mut consumers {
        if !c.stop().await? {
            failures.push(format!("{} did not exit 0 on SIGTERM", c.name));
        }
    }
    api.stop().await?;

    let accounting = account(&ch, &ledger).await?;
    if !accounting.exact() {
        failures.push(format!(
            "accounting: {} lost, {} duplicated ({} at the same offset, {} visible with FINAL), {} altered, {} unknown",
            accounting.lost,
            accounting.duplicated,
            accounting.duplicated_same_offset,
            accounting.duplicated_final,
            accounting.mismatched,
            accounting.unknown
        ));
        failures.extend(accounting.problems.iter().cloned());
    }
    if acked == 0 {
        failures.push("no event was acknowledged".into());
    }
    if let Some(d) = &dlq {
        if !d.missing.is_empty()
            || d.without_reason > 0
            || d.unexpected > 0
            || !d.wrong_source.is_empty()
        {
            failures.push(format!(
                "dead-letter topic: {} poison messages missing, {} without a reason, {} with a wrong source, {} unexpected messages",
                d.missing.len(),
                d.without_reason,
                d.wrong_source.len(),
                d.unexpected
            ));
            failures.extend(d.wrong_source.iter().take(10).cloned());
            failures.extend(
                d.missing
                    .iter()
                    .take(10)
                    .map(|m| format!("not dead-lettered: {m}")),
            );
        }
        if !poison.refused.is_empty() {
            failures.push(format!(
                "broker refused poison: {}",
                poison.refused.join("; ")
            ));
        }
    }
    let api_verdict = judge(&samples, &outages, 10.0);
    if api_verdict.bad > 0 {
        failures.push(format!(
            "API: {} of {} answers wrong",
            api_verdict.bad, api_verdict.requests
        ));
        failures.extend(api_verdict.first_bad.iter().cloned());
    }
    if api_verdict.requests == 0 && spec.query_clients > 0 {
        failures.push("API: no request completed".into());
    }
    for f in &mut faults {
        let end_ms = t0_ms + (f.end * 1000.0) as i64;
        f.recovery_secs = recovery_secs(&accounting.latencies, end_ms, h.latency_threshold_ms);
        if f.recovery_secs.is_none() {
            failures.push(format!(
                "latency did not recover under {} ms after '{}'",
                h.latency_threshold_ms, f.label
            ));
        }
    }
    let (p50, p99) = latency_percentiles(&accounting.latencies);
    let trends: Vec<MemTrend> = mem.iter().map(|m| m.trend(0.25, 16 << 20)).collect();
    if spec.soak {
        for t in trends.iter().filter(|t| !t.bounded) {
            failures.push(format!(
                "memory of {} grew: first third mean {} MiB, last third {} MiB",
                t.name,
                t.first_third_mean >> 20,
                t.last_third_mean >> 20
            ));
        }
    }
    if failures.is_empty() {
        ch.query(&format!("DROP DATABASE IF EXISTS {}", env.database))
            .execute()
            .await
            .ok();
    }
    Ok(ScenarioResult {
        name: spec.name,
        seed: spec.seed,
        poison_published: poison.published.len() as u64,
        dlq,
        api: api_verdict,
        faults,
        p50_ms: p50,
        p99_ms: p99,
        consumer_peak_rss: trends[..2].iter().map(|t| t.peak).max().unwrap_or(0),
        api_peak_rss: trends[2].peak,
        memory: if spec.soak { trends } else { Vec::new() },
        accounting,
        drain_secs,
        failures,
        wall_secs: wall.elapsed().as_secs_f64(),
    })
}

async fn sleep_until(t0: Instant, secs: f64) {
    tokio::time::sleep_until((t0 + Duration::from_secs_f64(secs)).into()).await;
}

async fn sample_memory(pids: Pids, stop: CancelFlag) -> Vec<MemSeries> {
    let mut series: Vec<MemSeries> = ["consumer-1", "consumer-2", "api"]
        .iter()
        .map(|n| MemSeries {
            name: (*n).to_string(),
            samples: Vec::new(),
        })
        .collect();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.is_cancelled() {
        tick.tick().await;
        let now = *pids.lock().unwrap_or_else(|p| p.into_inner());
        for (s, pid) in series.iter_mut().zip(now) {
            if let Some(rss) = pid.and_then(crate::apps::rss_of) {
                s.samples.push(rss);
            }
        }
    }
    series
}
