//! The relay SIGKILLed at random points while 50 000 events are committed by writers in eight
//! workspaces, and restarted each time: every event is visible once in ClickHouse, and in the
//! topic the first occurrences of each workspace's events come in commit order. Duplicates
//! (rows published but not yet deleted when the relay died) are counted and reported.

mod ingest_support;
mod relay_support;

use std::time::Duration;

use anyhow::{ensure, Result};
use ingest_support::{synth, terminate, Guard, World};
use rand::Rng as _;
use relay_support::{audit_order, read_topic, relay_env, spawn_relay, Kind, Outbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_relay_loses_nothing_and_keeps_workspace_order() -> Result<()> {
    const N: usize = 50_000;
    let w = World::new("relaycrash", 3).await?;
    let outbox = std::sync::Arc::new(Outbox::start(Kind::Postgres, &w, 8).await?);
    let env = relay_env(&outbox.url, "");
    // Eight writers (one per workspace), 10 events a transaction, about 5 000 events/s.
    let writer = {
        let outbox = outbox.clone();
        let events = synth(N, 23, 8);
        tokio::spawn(async move {
            outbox
                .commit_per_workspace(events, 10, Duration::from_millis(15))
                .await
        })
    };
    let mut kills = 0;
    while !writer.is_finished() {
        let mut relay = Guard(Some(spawn_relay(&w, &format!("r{kills}"), &env)?));
        let pause = rand::rng().random_range(300..1_500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if let Some(child) = relay.0.as_mut() {
            child.kill()?; // SIGKILL
            child.wait()?;
        }
        relay.0 = None;
        kills += 1;
        eprintln!(
            "kill {kills} after {pause} ms: {} rows in the outbox",
            outbox.rows().await?
        );
    }
    let committed = writer.await??;
    ensure!(kills >= 3, "only {kills} kills: the writers were too fast");
    let mut relay = Guard(Some(spawn_relay(&w, "final", &env)?));
    outbox.wait_drained(Duration::from_secs(120)).await?;

    let (brokers, topic) = (w.brokers.clone(), w.topic.clone());
    let records = tokio::task::spawn_blocking(move || {
        read_topic(&brokers, &topic, N, Duration::from_secs(120))
    })
    .await??;
    let audit = audit_order(&records, &committed)?;
    eprintln!(
        "{kills} kills: {} records for {N} events, {} duplicates ({:.2}%)",
        audit.records,
        audit.duplicates,
        100.0 * audit.duplicates as f64 / N as f64
    );

    let mut consumer = Guard(Some(w.spawn_consumer("consumer")?));
    w.wait_rows(N as u64, Duration::from_secs(180)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows = relay_support::assert_visible_once(&w, N as u64).await?;
    eprintln!("{rows} rows stored before the merge for {N} events");
    ensure!(terminate(consumer.0.as_mut().expect("running"))?.success());
    consumer.0 = None;
    ensure!(terminate(relay.0.as_mut().expect("running"))?.success());
    relay.0 = None;
    Ok(())
}
