//! The consumer is SIGKILLed at several random moments during ingestion and restarted: at the
//! end every event is stored exactly once, counted with and without FINAL.

mod ingest_support;

use std::time::Duration;

use anyhow::{ensure, Result};
use ingest_support::{messages, synth, World};

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
    // Produced in slices while the consumer is killed and restarted.
    let producer = w.produce_in_background(events, N / 6, Duration::from_millis(700));
    w.kill_consumers_at_random_moments(4).await?;
    producer.await??;
    w.final_consumer_stores_exactly(N as u64).await?;
    let journal: u64 = w
        .client()
        .query("SELECT count() FROM sink_batches")
        .fetch_one()
        .await?;
    ensure!(journal > 0, "the batch journal is empty");
    Ok(())
}
