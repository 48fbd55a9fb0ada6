//! The broker down for 60 s: commits keep succeeding, the outbox grows, `/health` says the
//! broker fails; once the broker is back the relay catches up, the outbox drains, every event
//! is in the topic in commit order per workspace and visible once. Runs on a private stack
//! (its own broker and ClickHouse) so stopping the broker disturbs no other test.

mod ingest_support;
mod relay_support;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use ingest_support::{free_listen_addr, synth, terminate, Guard, World};
use relay_support::{audit_order, read_topic, relay_env, spawn_relay, wait_health, Kind, Outbox};

const OUTAGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_outbox_grows_then_drains() -> Result<()> {
    let stack = tokio::task::spawn_blocking(auditlog_testkit::PrivateStack::start).await??;
    let w = World::on_stack("relayoutage", 3, &stack).await?;
    let outbox = std::sync::Arc::new(Outbox::start(Kind::Postgres, &w, 4).await?);
    let listen = free_listen_addr()?;
    let mut relay = Guard(Some(spawn_relay(
        &w,
        "relay",
        &relay_env(&outbox.url, &listen),
    )?));
    wait_health(&listen, 200, "\"status\":\"ok\"", Duration::from_secs(30)).await?;

    // About 200 events/s from four writers for the whole outage and a while after.
    let events = synth(18_000, 31, 4);
    let writer = {
        let outbox = outbox.clone();
        tokio::spawn(async move {
            outbox
                .commit_per_workspace(events, 5, Duration::from_millis(100))
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let env = stack.env().to_vec();
    tokio::task::spawn_blocking(move || auditlog_testkit::stack_command(&env, &["stop", "broker"]))
        .await??;
    let down = Instant::now();
    let body = wait_health(&listen, 503, "\"degraded\"", Duration::from_secs(30)).await?;
    eprintln!("broker down: {body}");
    let early = outbox.rows().await?;
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    let late = outbox.rows().await?;
    ensure!(
        !writer.is_finished(),
        "the writers stopped during the outage"
    );
    ensure!(
        late > early + 5_000,
        "the outbox did not grow while the broker was down: {early} -> {late} rows"
    );
    ensure!(
        relay.0.as_mut().expect("running").try_wait()?.is_none(),
        "the relay exited"
    );
    eprintln!("after {:?} down: {late} rows in the outbox", down.elapsed());
    let env = stack.env().to_vec();
    tokio::task::spawn_blocking(move || {
        auditlog_testkit::stack_command(&env, &["start", "broker"])
    })
    .await??;
    let back = Instant::now();
    let committed = writer.await??;
    outbox.wait_drained(Duration::from_secs(120)).await?;
    eprintln!(
        "outbox drained {:?} after the broker came back",
        back.elapsed()
    );
    wait_health(&listen, 200, "\"status\":\"ok\"", Duration::from_secs(30)).await?;

    let n: usize = committed.values().map(Vec::len).sum();
    let (brokers, topic) = (w.brokers.clone(), w.topic.clone());
    let records = tokio::task::spawn_blocking(move || {
        read_topic(&brokers, &topic, n, Duration::from_secs(60))
    })
    .await??;
    let audit = audit_order(&records, &committed)?;
    eprintln!(
        "{} records for {n} events, {} duplicates",
        audit.records, audit.duplicates
    );
    let mut consumer = Guard(Some(w.spawn_consumer("consumer")?));
    w.wait_rows(n as u64, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows = relay_support::assert_visible_once(&w, n as u64).await?;
    eprintln!("{rows} rows stored before the merge for {n} events");
    ensure!(terminate(consumer.0.as_mut().expect("running"))?.success());
    consumer.0 = None;
    ensure!(terminate(relay.0.as_mut().expect("running"))?.success());
    relay.0 = None;
    Ok(())
}
