//! Two relays at once on one outbox: every event once in the topic (no duplicates: nobody
//! crashed), each workspace's events in commit order, both relays shipping. PostgreSQL and
//! MariaDB.

mod ingest_support;
mod relay_support;

use std::time::Duration;

use anyhow::{ensure, Result};
use ingest_support::{free_listen_addr, synth, terminate, Guard, World};
use relay_support::{audit_order, metric, read_topic, relay_env, spawn_relay, Kind, Outbox};

async fn two_relays(kind: Kind) -> Result<()> {
    const N: usize = 20_000;
    let w = World::new("relaytwo", 3).await?;
    let outbox = Outbox::start(kind, &w, 8).await?;
    let listens = [free_listen_addr()?, free_listen_addr()?];
    let mut relays = Vec::new();
    for (i, listen) in listens.iter().enumerate() {
        let mut env = relay_env(&outbox.url, listen);
        // Each claim takes at most a quarter of the buckets and 500 rows, so both relays
        // find work while the other holds its claim.
        env.push(("AUDITLOG_RELAY__MAX_BUCKETS".into(), "16".into()));
        env.push(("AUDITLOG_RELAY__BATCH_ROWS".into(), "500".into()));
        relays.push(Guard(Some(spawn_relay(&w, &format!("relay{i}"), &env)?)));
    }
    let committed = outbox
        .commit_per_workspace(synth(N, 29, 32), 5, Duration::from_millis(5))
        .await?;
    outbox.wait_drained(Duration::from_secs(120)).await?;
    let (brokers, topic) = (w.brokers.clone(), w.topic.clone());
    let records = tokio::task::spawn_blocking(move || {
        read_topic(&brokers, &topic, N, Duration::from_secs(60))
    })
    .await??;
    let audit = audit_order(&records, &committed)?;
    ensure!(
        audit.duplicates == 0,
        "{} duplicates without a crash",
        audit.duplicates
    );
    let mut total = 0.0;
    for listen in &listens {
        let shipped = metric(listen, "auditlog_relay_rows_shipped_total").await?;
        eprintln!("relay on {listen} shipped {shipped}");
        ensure!(shipped > 0.0, "the relay on {listen} shipped nothing");
        total += shipped;
    }
    ensure!(total as usize == N, "shipped {total} for {N}");

    let mut consumer = Guard(Some(w.spawn_consumer("consumer")?));
    w.wait_rows(N as u64, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.assert_exactly(N as u64).await?;
    for g in relays.iter_mut().chain(std::iter::once(&mut consumer)) {
        ensure!(terminate(g.0.as_mut().expect("running"))?.success());
        g.0 = None;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_postgres() -> Result<()> {
    two_relays(Kind::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_mariadb() -> Result<()> {
    two_relays(Kind::MariaDb).await
}
