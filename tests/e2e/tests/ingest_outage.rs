//! ClickHouse stopped for 30 s mid-stream, then restarted: nothing is lost, the consumer pauses
//! (health degraded) and its memory stays bounded. Runs on a private stack (its own ClickHouse
//! and broker) so stopping ClickHouse does not disturb other tests.

mod ingest_support;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use ingest_support::{http_get, messages, rss_kib, synth, terminate, Guard, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_outage_pauses_and_loses_nothing() -> Result<()> {
    const N: usize = 40_000;
    let stack = tokio::task::spawn_blocking(auditlog_testkit::PrivateStack::start).await??;
    let mut w = World::on_stack("ingestoutage", 3, &stack).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
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
    let producer = {
        let (brokers, topic, events) = (w.brokers.clone(), w.topic.clone(), events.clone());
        tokio::spawn(async move {
            for slice in events.chunks(500) {
                ingest_support::produce_to(&brokers, &topic, slice).await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            anyhow::Ok(())
        })
    };
    w.wait_rows(5_000, Duration::from_secs(120)).await?;
    let env = stack.env().to_vec();
    tokio::task::spawn_blocking(move || {
        auditlog_testkit::stack_command(&env, &["stop", "clickhouse"])
    })
    .await??;
    let stopped = Instant::now();
    let mut max_rss = 0;
    let mut saw_degraded = false;
    while stopped.elapsed() < Duration::from_secs(30) {
        max_rss = max_rss.max(rss_kib(pid).unwrap_or(0));
        ensure!(
            consumer.0.as_mut().expect("running").try_wait()?.is_none(),
            "consumer exited during the outage"
        );
        if let Ok((_, body)) = http_get(&listen, "/health").await {
            saw_degraded |= body.contains("degraded");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let env = stack.env().to_vec();
    tokio::task::spawn_blocking(move || {
        auditlog_testkit::stack_command(&env, &["start", "clickhouse"])
    })
    .await??;
    producer.await??;
    w.wait_rows(N as u64, Duration::from_secs(240)).await?;
    max_rss = max_rss.max(rss_kib(pid).unwrap_or(0));
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.assert_exactly(N as u64).await?;
    let (_, metrics) = http_get(&listen, "/metrics").await?;
    ensure!(
        metrics.contains("auditlog_sink_write_retries_total"),
        "no retries recorded:\n{metrics}"
    );
    ensure!(
        saw_degraded,
        "/health never reported degraded during the outage"
    );
    eprintln!("consumer max RSS during the run: {} MiB", max_rss / 1024);
    ensure!(max_rss < 256 * 1024, "consumer RSS {max_rss} KiB");
    ensure!(terminate(consumer.0.as_mut().expect("running"))?.success());
    consumer.0 = None;
    Ok(())
}
