//! The pipeline on a real ClickHouse cluster (issue 16): Apache ZooKeeper and two replicas of
//! one shard, each test on a private cluster of its own (`auditlog_testkit::PrivateCluster`)
//! so they run in parallel, through the real `auditlog consume`, `serve`, `plan` and `migrate`
//! binaries configured with `clickhouse.cluster` and a failover URL. Counts are taken on
//! `events` (the `Distributed` table) and, after `SYSTEM SYNC REPLICA`, on each replica's own
//! `events_local`. `CLUSTER_EVENTS` (default 100,000) sizes the volume test; the others use a
//! fraction of it.

mod cluster_support;
mod ingest_support;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use auditlog_testkit::content_checksum;
use cluster_support::{ensure_replicas_hold_exactly, servers, stop_merges, Api};
use ingest_support::{
    aged_events, ages_in, messages, retention_in, synth, terminate, wait_mutations_of, Guard,
};

/// 100k events by two consumers into the cluster: exactly one row per event on `events` and on
/// each replica, and the same content as the same events ingested into a single server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_fill_both_replicas_like_a_single_server() -> Result<()> {
    let n = cluster_support::events(1.0);
    let cluster = cluster_support::start().await?;
    let w = cluster_support::world("cl100k", 4, &cluster, true).await?;
    cluster_support::stop_merges_everywhere(&cluster, &w.clickhouse.database).await?;
    // The same events into one server: the shared test stack, a database of its own (topic on
    // the cluster's broker).
    let single = cluster_support::single_server_world("cl100kref", 4, &cluster).await?;
    let events = messages(&synth(n, 71, 25));
    let mut a = Guard(Some(w.spawn_consumer("a")?));
    let mut b = Guard(Some(w.spawn_consumer("b")?));
    let mut reference = Guard(Some(single.spawn_consumer("ref")?));
    // One after the other: two 100k bursts at once on one broker stall consumer groups here.
    let started = Instant::now();
    w.produce(&events).await?;
    w.wait_rows(n as u64, Duration::from_secs(300)).await?;
    eprintln!(
        "{n} events into the cluster in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    single.produce(&events).await?;
    single.wait_rows(n as u64, Duration::from_secs(300)).await?;
    // Anything still replaying would show up now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.assert_exactly(n as u64).await?;
    single.assert_exactly(n as u64).await?;
    ensure_replicas_hold_exactly(&cluster, &w.clickhouse.database, n as u64).await?;
    let on_cluster = content_checksum(&w.client(), "events", false).await?;
    let on_single = content_checksum(&single.client(), "events", false).await?;
    ensure!(
        on_cluster == on_single,
        "content differs: cluster {on_cluster}, single server {on_single}"
    );
    for (i, c) in servers(&cluster, &w.clickhouse.database).iter().enumerate() {
        let local = content_checksum(c, "events_local", false).await?;
        ensure!(
            local == on_single,
            "replica {i}: content {local}, single server {on_single}"
        );
    }
    for c in [&mut a, &mut b, &mut reference] {
        ensure!(terminate(c.0.as_mut().context("running")?)?.success());
        c.0 = None;
    }
    Ok(())
}

/// A replica SIGKILLed mid-stream (the one the consumer and the API are configured with first):
/// the consumer carries on through the other, the API keeps answering lists, and once
/// restarted the killed replica catches up; nothing lost, nothing duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_catches_up_and_the_api_keeps_answering() -> Result<()> {
    let n = cluster_support::events(0.5);
    let cluster = cluster_support::start().await?;
    let w = cluster_support::world("clkillrep", 3, &cluster, true).await?;
    let db = w.clickhouse.database.clone();
    cluster_support::stop_merges_everywhere(&cluster, &db).await?;
    let events = synth(n, 81, 8);
    let api = Api::start(&w, &events[0].workspace_id).await?;
    let mut consumer = Guard(Some(w.spawn_consumer("a")?));
    // About 20 slices over some 10 s, so that ingestion runs while the replica is down.
    let producer = w.produce_in_background(messages(&events), n / 20, Duration::from_millis(500));
    w.wait_rows(n as u64 / 5, Duration::from_secs(120)).await?;
    let (st, listed) = api.list().await?;
    ensure!(
        st == 200 && listed > 0,
        "list before the kill: {st}, {listed} events"
    );

    let survivor = &servers(&cluster, &db)[1];
    let before = survivor
        .query("SELECT count() FROM events_local")
        .fetch_one::<u64>()
        .await?;
    // `sigkill` returns once the process is gone entirely: one request running on the server
    // as it dies may fail (docs/cluster.md, "Failover"), every later one must find the other.
    auditlog_testkit::sigkill(cluster.pid("clickhouse")?);
    let killed = Instant::now();
    let mut answered = 0;
    let mut failed = Vec::new();
    while killed.elapsed() < Duration::from_secs(8) {
        let t = Instant::now();
        match api.list().await {
            Ok((200, k)) if k > 0 => answered += 1,
            other => failed.push(format!(
                "{:.1} s after the kill ({} ms): {other:?}",
                killed.elapsed().as_secs_f64(),
                t.elapsed().as_millis()
            )),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let during = survivor
        .query("SELECT count() FROM events_local")
        .fetch_one::<u64>()
        .await?;
    eprintln!(
        "replica ch1 down 8 s: {answered} lists answered, {} failed {failed:?}; \
         ch2 went from {before} to {during} rows",
        failed.len()
    );
    ensure!(
        during > before,
        "nothing was written through the surviving replica while ch1 was down"
    );
    cluster_support::restart(&cluster, "clickhouse")?;
    stop_merges(&servers(&cluster, &db)[0]).await?;
    producer.await??;
    w.wait_rows(n as u64, Duration::from_secs(240)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.assert_exactly(n as u64).await?;
    ensure_replicas_hold_exactly(&cluster, &db, n as u64).await?;
    ensure!(terminate(consumer.0.as_mut().context("running")?)?.success());
    consumer.0 = None;
    // Checked last, so that a failure here still shows whether the rest holds.
    ensure!(
        failed.is_empty(),
        "the API failed while a replica was down: {failed:?}"
    );
    Ok(())
}

/// ZooKeeper stopped for 30 s mid-stream: the consumer pauses and retries (health degraded
/// during the outage or its recovery, retries counted) with bounded memory, and stores
/// everything once ZooKeeper is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_outage_pauses_the_consumer_and_loses_nothing() -> Result<()> {
    const OUTAGE: Duration = Duration::from_secs(30);
    const RECOVERY: Duration = Duration::from_secs(20);
    let n = cluster_support::events(0.4);
    let cluster = cluster_support::start().await?;
    let mut w = cluster_support::world("clzk", 3, &cluster, true).await?;
    let db = w.clickhouse.database.clone();
    cluster_support::stop_merges_everywhere(&cluster, &db).await?;
    let listen = ingest_support::free_listen_addr()?;
    w.consumer_setting("metrics_listen", &listen);
    w.consumer_setting("retry_max_backoff", "2s");
    let mut consumer = Guard(Some(w.spawn_consumer("a")?));
    let pid = consumer.0.as_ref().map_or(0, std::process::Child::id);
    // A steady stream of about 1000 events/s through the outage.
    let producer =
        w.produce_in_background(messages(&synth(n, 91, 10)), 500, Duration::from_millis(500));
    w.wait_rows(3_000, Duration::from_secs(120)).await?;
    cluster_support::stop(&cluster, "zookeeper")?;
    let outage = ingest_support::watch_outage(&mut consumer, &listen, OUTAGE).await?;
    // The pause shows while ZooKeeper is down: on a cluster an insert gives up after three
    // quick Keeper retries (not ClickHouse's ~2 minutes), so /health says degraded at once.
    outage.ensure_paused_and_bounded(&listen, pid).await?;
    let back = Instant::now();
    cluster_support::restart(&cluster, "zookeeper")?;
    // Memory while it catches up.
    let recovery = ingest_support::watch_outage(&mut consumer, &listen, RECOVERY).await?;
    let outage = outage.and(recovery);
    producer.await??;
    w.wait_rows(n as u64, Duration::from_secs(300)).await?;
    eprintln!(
        "all {n} stored {:.1} s after ZooKeeper came back",
        back.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.assert_exactly(n as u64).await?;
    ensure_replicas_hold_exactly(&cluster, &db, n as u64).await?;
    outage.ensure_paused_and_bounded(&listen, pid).await?;
    ensure!(terminate(consumer.0.as_mut().context("running")?)?.success());
    consumer.0 = None;
    Ok(())
}

/// The consumer SIGKILLed at random moments while it inserts into the cluster, restarted each
/// time: every event stored exactly once, on both replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_while_inserting_leaves_exactly_once() -> Result<()> {
    let n = cluster_support::events(0.4);
    let cluster = cluster_support::start().await?;
    let mut w = cluster_support::world("clkillc", 3, &cluster, true).await?;
    let db = w.clickhouse.database.clone();
    cluster_support::stop_merges_everywhere(&cluster, &db).await?;
    // Small, time-cut batches: many recorded cuts to reproduce after each kill.
    w.consumer_setting("batch_max_rows", "2000");
    w.consumer_setting("batch_max_wait", "150ms");
    let events = messages(&synth(n, 101, 12));
    let producer = w.produce_in_background(events, n / 6, Duration::from_millis(700));
    w.kill_consumers_at_random_moments(3).await?;
    producer.await??;
    w.final_consumer_stores_exactly(n as u64).await?;
    ensure_replicas_hold_exactly(&cluster, &db, n as u64).await?;
    let journal: Vec<u64> = {
        let mut out = Vec::new();
        for c in servers(&cluster, &db) {
            out.push(
                c.query("SELECT count() FROM sink_batches")
                    .fetch_one()
                    .await?,
            );
        }
        out
    };
    ensure!(
        journal.iter().all(|&j| j > 0 && j == journal[0]),
        "the batch journal is not replicated alike: {journal:?}"
    );
    Ok(())
}

/// A plan downgrade on the cluster rewrites the stored rows' retention on both replicas, and
/// TTL (forced, `ON CLUSTER`) then removes the older rows from both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_downgrade_removes_old_rows_from_both_replicas() -> Result<()> {
    let cluster = cluster_support::start().await?;
    let mut w = cluster_support::world("clplan", 1, &cluster, true).await?;
    let db = w.clickhouse.database.clone();
    w.consumer_setting("plans_refresh", "500ms");
    let (ws_a, ws_b) = ("ws_cl_a", "ws_cl_b");
    for ws in [ws_a, ws_b] {
        w.cli(&["plan", "set", ws, "enterprise", "--unlimited"])?;
    }
    let events = aged_events(&[ws_a, ws_b], &[3, 10, 30, 100], 111);
    let mut consumer = Guard(Some(w.spawn_consumer("a")?));
    w.produce(&messages(&events)).await?;
    w.wait_rows(8, Duration::from_secs(60)).await?;
    let replicas = servers(&cluster, &db);
    for c in &replicas {
        cluster_support::synced_counts(c).await?;
        ensure!(retention_in(c, "events_local", ws_a).await? == vec![0]);
    }

    // Downgrades: a to pro (90 days), b to free (7 days).
    w.cli(&["plan", "set", ws_a, "pro"])?;
    w.cli(&["plan", "set", ws_b, "free"])?;
    for c in &replicas {
        wait_mutations_of(c, "events_local").await?;
    }
    w.client()
        .query(&format!(
            "ALTER TABLE events_local ON CLUSTER {} MATERIALIZE TTL",
            cluster.cluster()
        ))
        .with_setting("mutations_sync", "2")
        .execute()
        .await
        .context("MATERIALIZE TTL on the cluster")?;
    for (i, c) in replicas.iter().enumerate() {
        wait_mutations_of(c, "events_local").await?;
        cluster_support::synced_counts(c).await?;
        let (ra, rb) = (
            retention_in(c, "events_local", ws_a).await?,
            retention_in(c, "events_local", ws_b).await?,
        );
        ensure!(
            ra == vec![90] && rb == vec![7],
            "replica {i}: retention {ra:?} {rb:?}"
        );
        let (a, b) = (
            ages_in(c, "events_local", ws_a).await?,
            ages_in(c, "events_local", ws_b).await?,
        );
        ensure!(
            a == vec![3, 10, 30] && b == vec![3],
            "replica {i}: ages left {a:?} (a, want [3, 10, 30]) and {b:?} (b, want [3])"
        );
    }
    ensure!(terminate(consumer.0.as_mut().context("running")?)?.success());
    consumer.0 = None;
    Ok(())
}

/// `auditlog migrate` twice on the cluster: the second run changes nothing, and both servers
/// have the tables of the contract with their Replicated engines and ZooKeeper paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_twice_on_the_cluster_creates_the_replicated_tables() -> Result<()> {
    let cluster = cluster_support::start().await?;
    let w = cluster_support::world("clmig", 1, &cluster, false).await?;
    let db = w.clickhouse.database.clone();
    let first = w.cli(&["migrate"])?;
    ensure!(
        first.contains("applied migrations"),
        "first migrate: {first}"
    );
    let second = w.cli(&["migrate"])?;
    ensure!(
        second.contains("schema up to date"),
        "second migrate: {second}"
    );
    let small = [
        "api_token_uses",
        "api_tokens",
        "log_checkpoints",
        "log_cosignatures",
        "log_heads",
        "log_keys",
        "log_leaves",
        "log_leaves_by_event",
        "log_positions",
        "log_tiles",
        "plan_changes",
        "schema_migrations",
        "sink_batches",
        "stream_cursors",
        "stream_status",
        "stream_workers",
        "streams",
        "workspace_plans",
    ];
    let applied = auditlog_store::migrate::MIGRATIONS.len() as u64;
    for (c, replica) in servers(&cluster, &db).iter().zip(["ch1", "ch2"]) {
        let tables: Vec<(String, String, String)> = c
            .query(
                "SELECT name, engine, engine_full FROM system.tables \
                 WHERE database = currentDatabase() ORDER BY name",
            )
            .fetch_all()
            .await?;
        let engine = |t: &str| {
            tables
                .iter()
                .find(|(name, ..)| name == t)
                .map(|(_, e, full)| (e.clone(), full.clone()))
                .with_context(|| format!("{replica}: no table {t} in {tables:?}"))
        };
        let (e, full) = engine("events_local")?;
        ensure!(
            e == "ReplicatedReplacingMergeTree",
            "{replica}: events_local is {e}"
        );
        ensure!(
            full.contains(&format!(
                "'/clickhouse/tables/{db}/{{shard}}/events', '{{replica}}'"
            )),
            "{replica}: events_local: {full}"
        );
        let (e, full) = engine("events")?;
        ensure!(
            e == "Distributed"
                && full.contains(&format!(
                    "Distributed('{}', '{db}', 'events_local', cityHash64(workspace_id))",
                    cluster.cluster()
                )),
            "{replica}: events is {full}"
        );
        for t in small {
            let (e, full) = engine(t)?;
            ensure!(
                e.starts_with("Replicated")
                    && full.contains(&format!(
                        "'/clickhouse/tables/{db}/all/{t}', '{{shard}}-{{replica}}'"
                    )),
                "{replica}: {t} is {full}"
            );
        }
        // `{database}` is expanded when the table is created; the replicas as ZooKeeper knows
        // them have every macro expanded.
        let replicas: Vec<(String, String, String)> = c
            .query(
                "SELECT table, zookeeper_path, replica_name FROM system.replicas \
                 WHERE database = currentDatabase() ORDER BY table",
            )
            .fetch_all()
            .await?;
        ensure!(replicas.len() == small.len() + 1, "{replica}: {replicas:?}");
        for (t, path, name) in &replicas {
            let (want_path, want_name) = if t == "events_local" {
                (
                    format!("/clickhouse/tables/{db}/01/events"),
                    replica.to_owned(),
                )
            } else {
                (
                    format!("/clickhouse/tables/{db}/all/{t}"),
                    format!("01-{replica}"),
                )
            };
            ensure!(
                *path == want_path && *name == want_name,
                "{replica}: {t} at {path} as {name}, want {want_path} as {want_name}"
            );
        }
        let migrations: u64 = c
            .query("SELECT count() FROM schema_migrations FINAL")
            .fetch_one()
            .await?;
        ensure!(
            migrations == applied,
            "{replica}: {migrations} rows in schema_migrations, {applied} migrations"
        );
    }
    Ok(())
}
