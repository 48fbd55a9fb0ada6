//! Stream delivery benchmark: real `auditlog stream-worker` (AUDITLOG_BIN), the shared test
//! stack (ClickHouse, broker), the testkit receiver.
//!
//! ```text
//! export AUDITLOG_BIN=$(/work/wt/bin/own-bin)        # or target/release/auditlog
//! cargo bench -p auditlog-e2e --bench streams
//! ```
//!
//! (a) Latency: events produced at `BENCH_RATE` (5000/s) for `BENCH_SECS` (30) through the real
//! broker and a real `auditlog consume`, one healthy webhook stream: p50/p99 of receiver
//! arrival - `inserted_at` (visible -> delivered) and of arrival - produce time.
//! (b) Fan-out: `BENCH_STREAMS` (1000) webhook streams over `BENCH_WORKSPACES` (100)
//! workspaces, each workspace seeded with `BENCH_EVENTS_PER_WS` (200) events, one local receiver:
//! delivered events/s until every stream caught up, and the worker's peak RSS (VmHWM).
//! `BENCH_ONLY=latency|fanout` runs one part.

#[path = "../tests/streams_support/mod.rs"]
mod streams_support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_store::feed::FeedStart;
use auditlog_testkit::Receiver;
use futures::StreamExt as _;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use streams_support::*;

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

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn spawn_consumer(w: &World, topic: &str, dlq: &str) -> Result<Child> {
    let log = w.log_path("consumer");
    let file = std::fs::File::create(&log)?;
    let target = auditlog_testkit::AuditlogTarget {
        brokers: &auditlog_testkit::brokers(),
        topic,
        dlq_topic: dlq,
        clickhouse_url: &w.clickhouse.url,
        database: &w.clickhouse.database,
        group_id: &format!("{topic}_g"),
    }
    .vars();
    Command::new(auditlog_testkit::auditlog_bin())
        .arg("consume")
        .envs(target)
        .env("AUDITLOG_CONSUMER__METRICS_LISTEN", "")
        .env("AUDITLOG_CONSUMER__BATCH_MAX_WAIT", "200ms")
        .env("RUST_LOG", "info,librdkafka=warn")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .context("spawn auditlog consume")
}

async fn latency() -> Result<()> {
    let rate = env_num("BENCH_RATE", 5000);
    let secs = env_num("BENCH_SECS", 30);
    let w = World::new("bench_lat").await?;
    let topic = auditlog_testkit::unique_name("bench_lat");
    let dlq = format!("{topic}_dlq");
    auditlog_testkit::create_topic(&topic, 1).await?;
    auditlog_testkit::create_topic(&dlq, 1).await?;
    let rx = Receiver::start().await?;
    let stream = w
        .webhook("ws_bench", &rx.url(), FeedStart::Beginning)
        .await?;
    let mut consumer = spawn_consumer(&w, &topic, &dlq)?;
    let (mut worker, _) = w.spawn_worker("worker")?;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", auditlog_testkit::brokers())
        .set("linger.ms", "5")
        .set("acks", "all")
        .create()?;
    let mut synth = Synth::new(SynthConfig {
        workspaces: 1,
        ..SynthConfig::default()
    });
    let mut produced: HashMap<String, i64> = HashMap::new();
    let tick = Duration::from_millis(20);
    let per_tick = (rate * 20 / 1000).max(1);
    let start = Instant::now();
    let mut next = tokio::time::Instant::now();
    let mut acks = futures::stream::FuturesUnordered::new();
    while start.elapsed() < Duration::from_secs(secs) {
        for _ in 0..per_tick {
            let mut e = synth.next_event();
            e.workspace_id = "ws_bench".into();
            e.time = chrono::Utc::now();
            let body = e.to_json_bytes();
            produced.insert(e.event_id.to_string(), now_ms());
            let record = FutureRecord::to(&topic).key("ws_bench").payload(&body);
            let ack = producer.send_result(record).map_err(|(e, _)| e)?;
            acks.push(ack);
        }
        while let Some(Some(_)) = futures::FutureExt::now_or_never(acks.next()) {}
        next += tick;
        tokio::time::sleep_until(next).await;
    }
    while acks.next().await.is_some() {}
    let n = produced.len();
    let mut arrival: HashMap<String, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrival.len() < n && Instant::now() < deadline {
        for h in hooks(&rx.drain())? {
            if h.ok {
                for id in h.ids {
                    arrival.entry(id).or_insert(h.at_ms);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows: Vec<(String, i64)> = w
        .clickhouse
        .client()
        .query("SELECT toString(event_id), toUnixTimestamp64Milli(inserted_at) FROM events")
        .fetch_all()
        .await?;
    let mut visible_to_delivered = Vec::new();
    let mut produced_to_delivered = Vec::new();
    for (id, inserted) in rows {
        if let Some(at) = arrival.get(&id) {
            visible_to_delivered.push(at - inserted);
            if let Some(p) = produced.get(&id) {
                produced_to_delivered.push(at - p);
            }
        }
    }
    visible_to_delivered.sort_unstable();
    produced_to_delivered.sort_unstable();
    println!(
        "latency: {n} events at {rate}/s for {secs}s, one webhook stream ({}); delivered {}",
        stream.stream_id,
        arrival.len()
    );
    println!(
        "  visible (inserted_at) -> receiver: p50 {} ms, p99 {} ms, max {} ms",
        percentile(&visible_to_delivered, 0.5),
        percentile(&visible_to_delivered, 0.99),
        visible_to_delivered.last().copied().unwrap_or(0)
    );
    println!(
        "  produced -> receiver:              p50 {} ms, p99 {} ms, max {} ms",
        percentile(&produced_to_delivered, 0.5),
        percentile(&produced_to_delivered, 0.99),
        produced_to_delivered.last().copied().unwrap_or(0)
    );
    let _ = terminate(&mut worker);
    let _ = signal(consumer.id(), "TERM");
    let _ = consumer.wait();
    Ok(())
}

async fn fanout() -> Result<()> {
    let streams = env_num("BENCH_STREAMS", 1000) as usize;
    let workspaces = env_num("BENCH_WORKSPACES", 100) as usize;
    let per_ws = env_num("BENCH_EVENTS_PER_WS", 200) as usize;
    let mut w = World::new("bench_fan").await?;
    let rx = Receiver::start().await?;
    let t = Instant::now();
    for i in 0..workspaces {
        w.seed(&format!("ws_{i}"), (i % 4) as i32, per_ws).await?;
    }
    let store = w.store.clone();
    let url = rx.url();
    let created: Vec<Result<_>> = futures::stream::iter(0..streams)
        .map(|i| {
            let store = store.clone();
            let url = format!("{url}/s{i}");
            async move {
                let spec = auditlog_streams::StreamSpec {
                    workspace_id: format!("ws_{}", i % workspaces),
                    name: format!("bench {i}"),
                    destination: auditlog_streams::Destination::Webhook { url },
                    format: Default::default(),
                    filter: Default::default(),
                };
                Ok(store.create(spec, FeedStart::Beginning).await?)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for c in created {
        c?;
    }
    println!(
        "fan-out: {streams} streams over {workspaces} workspaces, {per_ws} events each, set up in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let expected = (streams * per_ws) as f64;
    let (mut worker, metrics) = w.spawn_worker("worker")?;
    let pid = worker.id();
    let start = Instant::now();
    let mut first_at = None;
    let mut peak_rss = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        rx.drain();
        peak_rss = peak_rss.max(rss_kib(pid, "VmRSS:"));
        let done = metric(&metrics, "auditlog_stream_delivered_events_total")
            .await
            .unwrap_or(0.0);
        if done > 0.0 && first_at.is_none() {
            first_at = Some(Instant::now());
        }
        if done >= expected || start.elapsed() > Duration::from_secs(600) {
            let took = first_at.map_or(0.0, |f| f.elapsed().as_secs_f64());
            println!(
                "  delivered {done} of {expected} events in {took:.1}s after the first: {:.0} events/s; \
                 worker RSS peak {} MiB (VmHWM {} MiB)",
                done / took.max(0.001),
                peak_rss / 1024,
                rss_kib(pid, "VmHWM:") / 1024
            );
            break;
        }
    }
    let _ = terminate(&mut worker);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "latency" {
        latency().await?;
    }
    if only.is_empty() || only == "fanout" {
        fanout().await?;
    }
    Ok(())
}
