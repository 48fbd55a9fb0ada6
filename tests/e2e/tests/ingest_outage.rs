//! ClickHouse stopped for 30 s mid-stream, then restarted: nothing is lost, the consumer pauses
//! (health degraded) and its memory stays bounded. Runs on a private stack (its own ClickHouse
//! and broker) so stopping ClickHouse does not disturb other tests.

mod ingest_support;

use std::time::Duration;

use anyhow::{ensure, Result};
use ingest_support::{messages, synth, terminate, watch_outage, Guard, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_outage_pauses_and_loses_nothing() -> Result<()> {
    const N: usize = 40_000;
    let stack = tokio::task::spawn_blocking(auditlog_testkit::PrivateStack::start).await??;
    let mut w = World::on_stack("ingestoutage", 3, &stack).await?;
    let listen = ingest_support::free_listen_addr()?;
    w.consumer_setting("metrics_listen", &listen);
    w.consumer_setting("retry_max_backoff", "2s");
    let events = messages(&synth(N, 61, 10));
    let mut consumer = Guard(Some(w.spawn_consumer("a")?));
    let pid = consumer
        .0
        .as_ref()
        .map(std::process::Child::id)
        .unwrap_or(0);
    // A steady stream of about 1000 events/s for the whole test.
    let producer = w.produce_in_background(events, 500, Duration::from_millis(500));
    w.wait_rows(5_000, Duration::from_secs(120)).await?;
    let env = stack.env().to_vec();
    tokio::task::spawn_blocking(move || {
        auditlog_testkit::stack_command(&env, &["stop", "clickhouse"])
    })
    .await??;
    let outage = watch_outage(&mut consumer, &listen, Duration::from_secs(30)).await?;
    let env = stack.env().to_vec();
    tokio::task::spawn_blocking(move || {
        auditlog_testkit::stack_command(&env, &["start", "clickhouse"])
    })
    .await??;
    producer.await??;
    w.wait_rows(N as u64, Duration::from_secs(240)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.assert_exactly(N as u64).await?;
    outage.ensure_paused_and_bounded(&listen, pid).await?;
    ensure!(terminate(consumer.0.as_mut().expect("running"))?.success());
    consumer.0 = None;
    Ok(())
}
