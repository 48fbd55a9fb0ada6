//! Tamper-evident log benchmark (issue 18): real `auditlog consume` and `auditlog sequencer`
//! (AUDITLOG_BIN), the shared test stack (ClickHouse, broker).
//!
//! ```text
//! export AUDITLOG_BIN=$(/work/wt/bin/own-bin)        # or target/release/auditlog
//! cargo bench -p auditlog-e2e --bench log
//! BENCH_EVENTS=1000000 BENCH_ROUNDS=3 cargo bench -p auditlog-e2e --bench log   # long form
//! ```
//!
//! (a) Ingest with the log on vs off: `BENCH_EVENTS` (100,000) events produced once to a
//! 6-partition topic; each of `BENCH_ROUNDS` (3) rounds consumes all of them twice, into fresh
//! databases with consumer groups of their own, once with `auditlog sequencer` running
//! alongside and once without (alternating which goes first): seconds until every event is
//! stored, and for "on" until every event is also a committed leaf. Prints events/s and the
//! ratio on/off of the median times (the target: the log costs at most 10 %).
//! (b) Checkpoint lag: events produced at `BENCH_RATE` (5000/s) for `BENCH_SECS` (20) with a
//! consumer and a sequencer at its default settings (`checkpoint_interval` 2 s): per event,
//! the signing time of the first checkpoint covering it minus its `inserted_at`; p50/p99/max
//! (the target: p99 under 5 s). `BENCH_ONLY=ingest|lag` runs one part.

#[path = "../tests/ingest_support/mod.rs"]
mod ingest_support;
#[path = "../tests/log_support/mod.rs"]
mod log_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ingest_support::{messages, produce_to, synth, terminate, Guard, World};
use log_support::{committed, key_file, spawn_sequencer, wait_checkpointed, wait_committed};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A world reading `topic` into a fresh database of its own.
async fn world_on(topic: &str, dlq: &str, prefix: &str) -> Result<World> {
    let name = auditlog_testkit::unique_name(prefix);
    Ok(World {
        clickhouse: auditlog_testkit::migrated_database(&auditlog_testkit::clickhouse_url(), &name)
            .await?,
        group: format!("{name}_group"),
        name,
        brokers: auditlog_testkit::brokers(),
        topic: topic.to_owned(),
        dlq_topic: dlq.to_owned(),
        env: Vec::new(),
    })
}

fn sequencer_env(key: &std::path::Path) -> Vec<(String, String)> {
    vec![
        (
            "AUDITLOG_SEQUENCER__SIGNING_KEY_FILE".into(),
            key.display().to_string(),
        ),
        ("AUDITLOG_SEQUENCER__LISTEN".into(), String::new()),
    ]
}

fn stop(g: &mut Guard) -> Result<()> {
    if let Some(c) = g.0.as_mut() {
        terminate(c)?;
    }
    g.0 = None;
    Ok(())
}

/// One ingest run: seconds until `n` rows are stored and (with the log) until `n` leaves are
/// committed.
async fn ingest_once(
    topic: &str,
    dlq: &str,
    n: u64,
    log: Option<&[(String, String)]>,
) -> Result<(f64, f64)> {
    let w = world_on(
        topic,
        dlq,
        if log.is_some() {
            "benchlogon"
        } else {
            "benchlogoff"
        },
    )
    .await?;
    let start = Instant::now();
    let mut consumer = Guard(Some(w.spawn_consumer("c")?));
    let mut sequencer = Guard(match log {
        Some(env) => Some(spawn_sequencer(&w, "seq", env)?),
        None => None,
    });
    w.wait_rows(n, Duration::from_secs(3600)).await?;
    let stored = start.elapsed().as_secs_f64();
    let logged = if log.is_some() {
        wait_committed(&w.client(), n, Duration::from_secs(3600)).await?;
        start.elapsed().as_secs_f64()
    } else {
        stored
    };
    stop(&mut sequencer)?;
    stop(&mut consumer)?;
    Ok((stored, logged))
}

async fn ingest() -> Result<()> {
    let n = env_num("BENCH_EVENTS", 100_000);
    let rounds = env_num("BENCH_ROUNDS", 3);
    let name = auditlog_testkit::unique_name("benchlog");
    let (topic, dlq) = (format!("{name}_events"), format!("{name}_dlq"));
    auditlog_testkit::create_topic(&topic, 6).await?;
    auditlog_testkit::create_topic(&dlq, 1).await?;
    let t = Instant::now();
    produce_to(
        &auditlog_testkit::brokers(),
        &topic,
        &messages(&synth(n as usize, 18, 50)),
    )
    .await?;
    eprintln!("produced {n} events in {:.1} s", t.elapsed().as_secs_f64());
    let (key, _) = key_file("bench.log")?;
    let env = sequencer_env(&key);
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order: [bool; 2] = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for with_log in order {
            let (stored, logged) =
                ingest_once(&topic, &dlq, n, with_log.then_some(env.as_slice())).await?;
            println!(
                "round {round} log {}: stored in {stored:.2} s ({:.0} events/s){}",
                if with_log { "on " } else { "off" },
                n as f64 / stored,
                if with_log {
                    format!(", every event a committed leaf after {logged:.2} s")
                } else {
                    String::new()
                }
            );
            if with_log {
                on.push(stored);
            } else {
                off.push(stored);
            }
        }
    }
    let (off, on) = (median(off), median(on));
    println!(
        "ingest of {n} events, median of {rounds} rounds: log off {:.0} events/s, log on {:.0} events/s, on/off time ratio {:.3} (cost {:+.1} %)",
        n as f64 / off,
        n as f64 / on,
        on / off,
        (on / off - 1.0) * 100.0
    );
    Ok(())
}

async fn lag() -> Result<()> {
    let rate = env_num("BENCH_RATE", 5000);
    let secs = env_num("BENCH_SECS", 20);
    let w = World::new("benchloglag", 6).await?;
    let (key, _) = key_file("bench.log")?;
    let env = sequencer_env(&key);
    let mut consumer = Guard(Some(w.spawn_consumer("c")?));
    let mut sequencer = Guard(Some(spawn_sequencer(&w, "seq", &env)?));
    let n = (rate * secs) as usize;
    let msgs = messages(&synth(n, 42, 50));
    // The consumer joins its group first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tick = Duration::from_millis(50);
    let per_tick = (rate as usize * 50 / 1000).max(1);
    let start = Instant::now();
    let mut sends = Vec::new();
    for (i, chunk) in msgs.chunks(per_tick).enumerate() {
        let due = start + tick * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (b, t, c) = (w.brokers.clone(), w.topic.clone(), chunk.to_vec());
        sends.push(tokio::spawn(async move { produce_to(&b, &t, &c).await }));
    }
    for s in sends {
        s.await??;
    }
    eprintln!(
        "produced {n} events in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    w.wait_rows(n as u64, Duration::from_secs(300)).await?;
    wait_committed(&w.client(), n as u64, Duration::from_secs(300)).await?;
    wait_checkpointed(&w.client(), Duration::from_secs(60)).await?;
    let client = w.client();
    let inserted: HashMap<String, i64> = client
        .query("SELECT toString(event_id), toUnixTimestamp64Milli(min(inserted_at)) FROM events GROUP BY event_id")
        .fetch_all::<(String, i64)>()
        .await?
        .into_iter()
        .collect();
    let leaves: Vec<(String, u64, String)> = client
        .query("SELECT workspace_id, leaf_index, toString(event_id) FROM log_leaves FINAL")
        .fetch_all()
        .await?;
    let mut cps: HashMap<String, Vec<(u64, i64)>> = HashMap::new();
    for (ws, size, at) in client
        .query("SELECT workspace_id, tree_size, toUnixTimestamp64Milli(signed_at) FROM log_checkpoints ORDER BY workspace_id, tree_size")
        .fetch_all::<(String, u64, i64)>()
        .await?
    {
        cps.entry(ws).or_default().push((size, at));
    }
    let mut lags: Vec<i64> = leaves
        .iter()
        .filter_map(|(ws, idx, id)| {
            let list = cps.get(ws)?;
            let i = list.partition_point(|(size, _)| *size <= *idx);
            let (_, signed) = list.get(i)?;
            Some(signed - inserted.get(id)?)
        })
        .collect();
    lags.sort_unstable();
    println!(
        "checkpoint lag at {rate} events/s for {secs} s ({} events, {} checkpoints): inserted -> covered by a signed checkpoint p50 {} ms, p99 {} ms, max {} ms",
        lags.len(),
        cps.values().map(Vec::len).sum::<usize>(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(0)
    );
    anyhow::ensure!(
        committed(&client).await? == n as u64,
        "not every event is a leaf"
    );
    stop(&mut sequencer)?;
    stop(&mut consumer)?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "ingest" {
        ingest().await.context("ingest with the log on vs off")?;
    }
    if only.is_empty() || only == "lag" {
        lag().await.context("checkpoint lag")?;
    }
    Ok(())
}
