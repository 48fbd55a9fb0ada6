//! The consumer is SIGKILLed at several random moments during ingestion and restarted: at the
//! end every event is stored exactly once, counted with and without FINAL.

mod ingest_support;

use std::time::Duration;

use anyhow::{ensure, Result};
use ingest_support::{messages, synth, terminate, Guard, World};
use rand::Rng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_leaves_exactly_one_row_per_event() -> Result<()> {
    const N: usize = 60_000;
    let mut w = World::new("ingestkill", 3).await?;
    // Small, time-cut batches: many recorded cuts to reproduce after each kill.
    w.consumer_setting("batch_max_rows", "2000");
    w.consumer_setting("batch_max_wait", "150ms");
    // Dynamic membership (Tansu 0.6.0 mishandles static members, see ARCHITECTURE.md): each
    // restarted process gets the partitions once the killed one's session has expired.
    w.consumer_setting("session_timeout", "6s");
    let events = messages(&synth(N, 51, 12));
    let producer = {
        let (brokers, topic, events) = (w.brokers.clone(), w.topic.clone(), events.clone());
        tokio::spawn(async move {
            // Produced in slices while the consumer is killed and restarted.
            for slice in events.chunks(N / 6) {
                ingest_support::produce_to(&brokers, &topic, slice).await?;
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
            anyhow::Ok(())
        })
    };
    let mut rng = rand::rng();
    for round in 0..4 {
        let mut c = Guard(Some(w.spawn_consumer(&format!("k{round}"))?));
        // Each incarnation first waits out the group rejoin, then runs a random while.
        let before = w.count(false).await?;
        for _ in 0..600 {
            if w.count(false).await? > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..2500))).await;
        if let Some(child) = c.0.as_mut() {
            child.kill()?; // SIGKILL
            child.wait()?;
        }
        c.0 = None;
        eprintln!(
            "round {round}: killed with {} rows stored",
            w.count(false).await?
        );
    }
    producer.await??;
    let mut last = Guard(Some(w.spawn_consumer("final")?));
    w.wait_rows(N as u64, Duration::from_secs(300)).await?;
    // Anything still replaying would show up now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.assert_exactly(N as u64).await?;
    ensure!(terminate(last.0.as_mut().expect("running"))?.success());
    last.0 = None;
    let journal: u64 = w
        .client()
        .query("SELECT count() FROM sink_batches")
        .fetch_one()
        .await?;
    ensure!(journal > 0, "the batch journal is empty");
    Ok(())
}
