//! Outbox relay benchmark (issue 19): a private PostgreSQL server holding the outbox, the real
//! `auditlog relay` (AUDITLOG_BIN: build it in release), the shared test stack's broker.
//!
//! ```text
//! cargo build --release -p auditlog && export AUDITLOG_BIN=target/release/auditlog
//! cargo test -p auditlog-e2e --bench relay          # or: cargo bench -p auditlog-e2e --bench relay
//! BENCH_RATE=2000 BENCH_SECS=30 BENCH_PRELOAD=200000 BENCH_ROUNDS=3 ... # the defaults
//! ```
//!
//! (a) Latency: writers commit one event per transaction at `BENCH_RATE` events/s in total
//! (16 workspaces, one writer each, on a steady schedule) for `BENCH_SECS`. Measured per event:
//! from the instant `COMMIT` returned to the writer to the instant a consumer in this process
//! (assigned to every partition, `fetch.wait.max.ms=5`) received the record. That is the
//! commit -> broker-acknowledged latency plus the consumer's fetch (a few ms): an upper bound
//! of the target's quantity. p50/p99/max; the target: p99 under 100 ms.
//! (b) Throughput: `BENCH_PRELOAD` rows committed while no relay runs (1000 per transaction,
//! 16 workspaces), then a relay started: rows per second from the first row leaving the outbox
//! to the outbox being empty (and including the relay's start-up). The target: at least
//! 20 000 events/s.
//! (c) Bounded table: during (a), once a second, the outbox's row count and
//! `pg_total_relation_size('auditlog_outbox')`; printed as min/max/last, and the size once
//! more after (b)'s drain. `BENCH_ONLY=latency|throughput` runs one part.

#[path = "../tests/ingest_support/mod.rs"]
mod ingest_support;
#[path = "../tests/relay_support/mod.rs"]
mod relay_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use auditlog_event::AuditEvent;
use ingest_support::{synth, terminate, Guard, World};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
use relay_support::{by_workspace, relay_env, spawn_relay, Kind, Outbox};
use uuid::Uuid;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Receives every record of `topic` in a thread, noting when each event arrived.
fn receiver(
    brokers: &str,
    topic: &str,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<std::thread::JoinHandle<Result<HashMap<Uuid, Instant>>>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", auditlog_testkit::unique_name("relaybench"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .set("fetch.min.bytes", "1")
        .create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = md
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(std::thread::spawn(move || {
        #[derive(serde::Deserialize)]
        struct Id {
            event_id: Uuid,
        }
        let mut seen = HashMap::new();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            if let Some(m) = consumer.poll(Duration::from_millis(50)) {
                let at = Instant::now();
                let m = m?;
                let id: Id = serde_json::from_slice(m.payload().unwrap_or_default())?;
                seen.entry(id.event_id).or_insert(at);
            }
        }
        Ok(seen)
    }))
}

/// Rows and total size (bytes) of the outbox table.
async fn table_stats(pool: &sqlx::PgPool) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT count(*) FROM auditlog_outbox), pg_total_relation_size('auditlog_outbox')",
    )
    .fetch_one(pool)
    .await?)
}

struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
    events: usize,
    rows: (i64, i64, i64),
    bytes: (i64, i64, i64),
}

async fn latency_round(rate: u64, secs: u64, seed: u64) -> Result<Latency> {
    let w = World::new("relaybench", 6).await?;
    let outbox = Arc::new(Outbox::start(Kind::Postgres, &w, 16).await?);
    let pool = sqlx::PgPool::connect(&outbox.url).await?;
    let _relay = Guard(Some(spawn_relay(&w, "lat", &relay_env(&outbox.url, ""))?));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let recv = receiver(&w.brokers, &w.topic, stop.clone())?;
    tokio::time::sleep(Duration::from_secs(2)).await; // relay and receiver up
    let workspaces = 16;
    let events = synth((rate * secs) as usize, seed, workspaces);
    let committed: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let per_writer = Duration::from_secs_f64(workspaces as f64 / rate as f64);
    let mut writers = tokio::task::JoinSet::new();
    for (_, evs) in by_workspace(events) {
        let (outbox, committed) = (outbox.clone(), committed.clone());
        writers.spawn(async move {
            let mut tick = tokio::time::interval(per_writer);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for e in evs {
                tick.tick().await;
                outbox.transaction(std::slice::from_ref(&e), true).await?;
                committed
                    .lock()
                    .expect("lock")
                    .insert(e.event_id, Instant::now());
            }
            anyhow::Ok(())
        });
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    while !writers.is_empty() {
        tokio::select! {
            r = writers.join_next() => { if let Some(r) = r { r??; } }
            () = tokio::time::sleep(Duration::from_secs(1)) => samples.push(table_stats(&pool).await?),
        }
    }
    let wrote = started.elapsed();
    outbox.wait_drained(Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    samples.push(table_stats(&pool).await?);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = recv
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    let committed = committed.lock().expect("lock");
    let mut lat: Vec<f64> = committed
        .iter()
        .map(|(id, at)| {
            seen.get(id)
                .map(|got| got.saturating_duration_since(*at).as_secs_f64() * 1000.0)
                .context("an event never arrived")
        })
        .collect::<Result<_>>()?;
    lat.sort_by(f64::total_cmp);
    eprintln!(
        "  wrote {} events in {:.1}s ({:.0}/s)",
        lat.len(),
        wrote.as_secs_f64(),
        lat.len() as f64 / wrote.as_secs_f64()
    );
    let col = |f: fn(&(i64, i64)) -> i64| {
        let v: Vec<i64> = samples.iter().map(f).collect();
        (
            *v.iter().min().unwrap_or(&0),
            *v.iter().max().unwrap_or(&0),
            *v.last().unwrap_or(&0),
        )
    };
    Ok(Latency {
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        max: *lat.last().unwrap_or(&f64::NAN),
        events: lat.len(),
        rows: col(|s| s.0),
        bytes: col(|s| s.1),
    })
}

async fn throughput_round(preload: usize, seed: u64) -> Result<(f64, f64, i64)> {
    let w = World::new("relaybench", 6).await?;
    let outbox = Outbox::start(Kind::Postgres, &w, 16).await?;
    let pool = sqlx::PgPool::connect(&outbox.url).await?;
    let events: Vec<AuditEvent> = synth(preload, seed, 16);
    let load = Instant::now();
    for chunk in events.chunks(1000) {
        outbox.transaction(chunk, true).await?;
    }
    eprintln!(
        "  preloaded {preload} rows in {:.1}s",
        load.elapsed().as_secs_f64()
    );
    let spawned = Instant::now();
    let mut relay = Guard(Some(spawn_relay(&w, "thr", &relay_env(&outbox.url, ""))?));
    let total = preload as i64;
    let mut first = None;
    loop {
        let rows = outbox.rows().await?;
        if first.is_none() && rows < total {
            first = Some(Instant::now());
        }
        if rows == 0 {
            break;
        }
        anyhow::ensure!(
            spawned.elapsed() < Duration::from_secs(600),
            "not drained in 10 min"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let from_first = first.map(|f| f.elapsed()).unwrap_or_default().as_secs_f64();
    let from_spawn = spawned.elapsed().as_secs_f64();
    terminate(relay.0.as_mut().expect("running"))?;
    relay.0 = None;
    let (_, bytes) = table_stats(&pool).await?;
    Ok((
        preload as f64 / from_first.max(1e-3),
        preload as f64 / from_spawn,
        bytes,
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<()> {
    let rounds = env_num("BENCH_ROUNDS", 3);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    eprintln!(
        "relay binary: {}",
        auditlog_testkit::auditlog_bin().display()
    );
    if only.is_empty() || only == "latency" {
        let (rate, secs) = (env_num("BENCH_RATE", 2000), env_num("BENCH_SECS", 30));
        println!("(a) commit -> received latency at {rate} events/s for {secs}s; (c) outbox table");
        for round in 0..rounds {
            let l = latency_round(rate, secs, 100 + round).await?;
            println!(
                "round {round}: {} events: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms | outbox rows min/max/last {:?}, bytes min/max/last {:?}",
                l.events, l.p50, l.p99, l.max, l.rows, l.bytes
            );
        }
    }
    if only.is_empty() || only == "throughput" {
        let preload = env_num("BENCH_PRELOAD", 200_000) as usize;
        println!("(b) relay throughput draining {preload} preloaded rows");
        for round in 0..rounds {
            let (from_first, from_spawn, bytes) = throughput_round(preload, 200 + round).await?;
            println!(
                "round {round}: {from_first:.0} events/s from the first row shipped ({from_spawn:.0}/s including start-up); outbox size after the drain {bytes} bytes"
            );
        }
    }
    Ok(())
}
