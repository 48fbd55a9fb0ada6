//! Cluster mode of the ingest benchmark (`BENCH_CLUSTER=1`): the same pre-produced topic
//! consumed by `auditlog consume` into a single server (`PrivateStack`) and into a cluster of
//! two replicas of one shard with ZooKeeper (`PrivateCluster`, `clickhouse.cluster` and a
//! failover URL set), each round a fresh group and database for both, alternating which goes
//! first. Throughput is N over the time from spawn until `count() FROM events` = N; afterwards
//! the second replica is synced (`SYSTEM SYNC REPLICA events_local LIGHTWEIGHT`) and counted,
//! and both sides' rows are compared (checksum over every written column, provenance
//! included: same topic, same offsets).

use std::time::Instant;

use anyhow::{ensure, Context as _, Result};
use auditlog_store::ClickHouseConfig;
use auditlog_testkit::{PrivateCluster, PrivateStack};

use super::{
    cpu_secs, env_num, produce, stop, wait_for_count, ConsumerEnv, OwnBroker, Settings, MIB,
};

/// One consumer run into one target.
struct Phase {
    secs: f64,
    peak_rss_kib: Option<u64>,
    consumer_cpu: f64,
    /// CPU seconds of the target's ClickHouse servers during the run.
    server_cpu: f64,
    checksum: u64,
}

/// Where a phase writes.
struct Target<'a> {
    label: &'static str,
    /// Settings for a database of this target (database filled in per phase).
    config: Box<dyn Fn(&str) -> ClickHouseConfig + 'a>,
    server_pids: Vec<u32>,
}

pub(super) async fn run(
    stack: &PrivateStack,
    cluster: &PrivateCluster,
    s: &Settings,
) -> Result<()> {
    let rounds = env_num("BENCH_ROUNDS", 3)?;
    let own_broker = match std::env::var("BENCH_BROKER_STORAGE") {
        Ok(storage) if !storage.is_empty() => Some(OwnBroker::start(&storage)?),
        _ => None,
    };
    let brokers = match &own_broker {
        Some(b) => format!("127.0.0.1:{}", b.port),
        None => cluster.brokers(),
    };
    let name = auditlog_testkit::unique_name("benchcl");
    let topic = format!("{name}_events");
    let dlq_topic = format!("{name}_dlq");
    auditlog_testkit::create_topic_on(&brokers, &topic, s.partitions).await?;
    auditlog_testkit::create_topic_on(&brokers, &dlq_topic, 1).await?;
    let producer = super::producer(&brokers)?;
    let t0 = Instant::now();
    let bytes = produce(&producer, &topic, s.events).await?;
    eprintln!(
        "produced {} events ({:.1} MB) in {:.1}s",
        s.events,
        bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    let single = Target {
        label: "single server",
        config: Box::new(|db: &str| ClickHouseConfig {
            url: stack.clickhouse_url(),
            database: db.to_owned(),
            ..ClickHouseConfig::default()
        }),
        server_pids: vec![stack.pid("clickhouse")?],
    };
    let replicated = Target {
        label: "2-replica cluster",
        config: Box::new(|db: &str| cluster.config(db)),
        server_pids: vec![cluster.pid("clickhouse")?, cluster.pid("clickhouse2")?],
    };
    let mut rows = Vec::new();
    for round in 0..rounds {
        let mut order = [&single, &replicated];
        if round % 2 == 1 {
            order.reverse();
        }
        let mut done = Vec::new();
        for (i, target) in order.iter().enumerate() {
            let db = format!("{name}_r{round}_{i}");
            let env = ConsumerEnv {
                brokers: brokers.clone(),
                topic: topic.clone(),
                dlq_topic: dlq_topic.clone(),
                ch: (target.config)(&db),
                group: format!("{db}_sink"),
            };
            let phase = measure(&env, target, s).await?;
            eprintln!(
                "round {round}: {}: {:.1} s ({:.0} events/s)",
                target.label,
                phase.secs,
                s.events as f64 / phase.secs
            );
            done.push((target.label, phase));
        }
        if done[0].0 != single.label {
            done.reverse();
        }
        let (one, two) = (&done[0].1, &done[1].1);
        ensure!(
            one.checksum == two.checksum,
            "round {round}: rows differ between the single server and the cluster (checksum {} vs {})",
            one.checksum,
            two.checksum
        );
        rows.push(done);
    }
    report(s, &rows);
    Ok(())
}

/// Migrates the phase's database, runs the consumer until N rows, then checks every replica.
async fn measure(env: &ConsumerEnv, target: &Target<'_>, s: &Settings) -> Result<Phase> {
    auditlog_store::migrate(&env.ch)
        .await
        .with_context(|| format!("migrate {}", env.ch.database))?;
    let client = env.ch.client();
    let cpu = |pids: &[u32]| pids.iter().filter_map(|&p| cpu_secs(p)).sum::<f64>();
    let server_cpu0 = cpu(&target.server_pids);
    let start = Instant::now();
    let mut child = env.spawn(&format!("{}_{}", env.ch.database, target.server_pids.len()))?;
    let peak = wait_for_count(
        &client,
        "SELECT count() FROM events",
        s.events,
        Some(&mut child),
        s.timeout,
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    let consumer_cpu = cpu_secs(child.id()).unwrap_or(f64::NAN);
    let server_cpu = cpu(&target.server_pids) - server_cpu0;
    stop(&mut child);
    let peak_rss_kib = peak?;
    // Every replica has every row.
    let urls = std::iter::once(&env.ch.url).chain(&env.ch.failover_urls);
    for url in urls.skip(1) {
        let replica = ClickHouseConfig {
            url: url.clone(),
            database: env.ch.database.clone(),
            ..ClickHouseConfig::default()
        }
        .client();
        let t = Instant::now();
        replica
            .query("SYSTEM SYNC REPLICA events_local LIGHTWEIGHT")
            .with_setting("receive_timeout", "600")
            .execute()
            .await
            .context("SYSTEM SYNC REPLICA")?;
        let n: u64 = replica
            .query("SELECT count() FROM events_local")
            .fetch_one()
            .await?;
        eprintln!(
            "{url}: {n} rows after a sync of {:.2} s",
            t.elapsed().as_secs_f64()
        );
        ensure!(n == s.events, "{url} holds {n} of {} rows", s.events);
    }
    let checksum = auditlog_testkit::content_checksum(&client, "events", true).await?;
    Ok(Phase {
        secs,
        peak_rss_kib,
        consumer_cpu,
        server_cpu,
        checksum,
    })
}

fn report(s: &Settings, rounds: &[Vec<(&'static str, Phase)>]) {
    let rate = |p: &Phase| s.events as f64 / p.secs;
    let rss = |p: &Phase| p.peak_rss_kib.map_or(f64::NAN, |k| k as f64 * 1024.0 / MIB);
    println!();
    println!(
        "N = {} events, {} partitions; single server vs 2-replica cluster (1 shard), same topic",
        s.events, s.partitions
    );
    println!("| round | single events/s | cluster events/s | cluster/single | CPU s consumer (single / cluster) | CPU s ClickHouse (single / both replicas) | consumer peak RSS MiB (single / cluster) |");
    println!("|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for (i, r) in rounds.iter().enumerate() {
        let (one, two) = (&r[0].1, &r[1].1);
        let ratio = rate(two) / rate(one);
        ratios.push(ratio);
        println!(
            "| {} | {:.0} ({:.1} s) | {:.0} ({:.1} s) | {ratio:.2} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} |",
            i + 1,
            rate(one),
            one.secs,
            rate(two),
            two.secs,
            one.consumer_cpu,
            two.consumer_cpu,
            one.server_cpu,
            two.server_cpu,
            rss(one),
            rss(two),
        );
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
    println!("mean ratio cluster/single: {mean:.2}; rows identical on both sides in every round (checksum)");
}
