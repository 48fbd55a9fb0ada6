//! End to end through the real `auditlog consume` binary, the test broker and ClickHouse:
//! volume and content, poison messages and the dead-letter topic, two consumers sharing a
//! group, retention by TTL and plan changes.

mod ingest_support;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{ensure, Result};
use auditlog_sink::EventRow;
use ingest_support::{messages, synth, terminate, Guard, World};

/// 100k synthetic events: exact count, one row per event id, exact content for a sample,
/// and a clean exit on SIGTERM after which a restarted consumer writes nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_events_end_to_end() -> Result<()> {
    const N: usize = 100_000;
    let w = World::new("ingest100k", 4).await?;
    let events = synth(N, 11, 25);
    let mut consumer = Guard(Some(w.spawn_consumer("a")?));
    w.produce(&messages(&events)).await?;
    w.wait_rows(N as u64, Duration::from_secs(240)).await?;
    w.assert_exactly(N as u64).await?;

    // Exact content for a sample of 500 events.
    let by_id: HashMap<_, _> = events.iter().map(|e| (e.event_id, e)).collect();
    let sample: Vec<String> = events
        .iter()
        .step_by(N / 500)
        .map(|e| e.event_id.to_string())
        .collect();
    let rows: Vec<EventRow> = w
        .client()
        .query("SELECT ?fields FROM events WHERE event_id IN ?")
        .bind(&sample)
        .fetch_all()
        .await?;
    ensure!(
        rows.len() == sample.len(),
        "{} sample rows of {}",
        rows.len(),
        sample.len()
    );
    for row in rows {
        let e = by_id[&row.event_id];
        let expected = EventRow::from_event(
            (*e).clone(),
            auditlog_sink::row::RowContext {
                partition: row.kafka_partition,
                offset: row.kafka_offset,
                retention_days: 7,
            },
        );
        ensure!(
            row == expected,
            "row differs from its event:\n{row:?}\n{expected:?}"
        );
    }
    // Provenance: offsets are unique per partition.
    let dup_offsets: u64 = w
        .client()
        .query("SELECT count() FROM (SELECT kafka_partition, kafka_offset FROM events GROUP BY 1, 2 HAVING count() > 1)")
        .fetch_one()
        .await?;
    ensure!(dup_offsets == 0);

    let status = terminate(consumer.0.as_mut().expect("running"))?;
    consumer.0 = None;
    ensure!(status.success(), "consumer exited with {status} on SIGTERM");
    // Everything was committed: a new consumer in the group finds nothing to do.
    let mut again = Guard(Some(w.spawn_consumer("b")?));
    tokio::time::sleep(Duration::from_secs(8)).await;
    ensure!(terminate(again.0.as_mut().expect("running"))?.success());
    again.0 = None;
    w.assert_exactly(N as u64).await
}
