//! The feed end to end: events produced to the real broker, written by the real `auditlog
//! consume` binary, read back with the feed reads (`auditlog_query::Reader::feed_page`) by a
//! poller running WHILE they arrive, including events whose times are hours in the past and
//! re-emitted copies: every event of the workspace, once (a re-emitted copy again only when its
//! copies were merged while the poller was between them), in offset order per partition.
//! And the same reads on a private cluster (`auditlog_testkit::PrivateCluster`, rows seeded
//! through the `Distributed` table).

mod ingest_support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use auditlog_query::{Dedup, Filter, Reader};
use auditlog_store::feed::FeedPosition;
use ingest_support::{messages, synth, terminate, Guard, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_gets_every_event_once_while_late_and_repeated_events_arrive() -> Result<()> {
    let w = World::new("feede2e", 3).await?;
    let mut consumer = Guard(Some(w.spawn_consumer("a")?));
    // Three workspaces; the followed one is the first event's.
    let mut events = synth(3000, 71, 3);
    let ws = events[0].workspace_id.clone();
    // A third of the second half is late: event times 2 to 30 hours in the past.
    let now = chrono::Utc::now();
    for (i, e) in events.iter_mut().enumerate().skip(1500) {
        if i % 3 == 0 {
            e.time = now - chrono::Duration::hours(2 + (i % 29) as i64);
        }
    }
    // Re-emitted copies (a producer retry) of 50 events, produced after the originals.
    let copies: Vec<_> = events.iter().step_by(60).take(50).cloned().collect();

    let reader = Reader::new(w.client(), Dedup::LimitBy, Duration::from_secs(30));
    let stored = Arc::new(AtomicBool::new(false));
    let poller = {
        let (reader, ws, stored) = (reader.clone(), ws.clone(), stored.clone());
        tokio::spawn(async move {
            let mut pos = FeedPosition::beginning();
            let mut got: Vec<(String, i32, i64)> = Vec::new();
            // Polls while events arrive; once all are stored, until caught up.
            loop {
                let all_stored = stored.load(Ordering::SeqCst);
                let page = reader.feed_page(&ws, &Filter::default(), &pos, 97).await?;
                if page.caught_up && all_stored {
                    got.extend(
                        page.items
                            .iter()
                            .map(|it| (it.event.id.clone(), it.partition, it.offset)),
                    );
                    break;
                }
                if page.items.is_empty() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                got.extend(
                    page.items
                        .iter()
                        .map(|it| (it.event.id.clone(), it.partition, it.offset)),
                );
                pos = page.next;
            }
            anyhow::Ok(got)
        })
    };
    for chunk in events.chunks(500) {
        w.produce(&messages(chunk)).await?;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    w.produce(&messages(&copies)).await?;
    // Every event stored (the copies may already be merged away, so rows are not counted),
    // then time for the copies' batch; the poller ends 5 s after its last new event.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while w.distinct_ids().await? < events.len() as u64 {
        ensure!(
            std::time::Instant::now() < deadline,
            "events not stored in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stored.store(true, Ordering::SeqCst);
    let got = poller.await??;

    let want: HashSet<String> = events
        .iter()
        .filter(|e| e.workspace_id == ws)
        .map(|e| e.event_id.to_string())
        .collect();
    let mut times: HashMap<&str, u32> = HashMap::new();
    for (id, _, _) in &got {
        *times.entry(id.as_str()).or_default() += 1;
    }
    let delivered: HashSet<String> = times.keys().map(|s| (*s).to_owned()).collect();
    ensure!(
        delivered == want,
        "delivered {} of {} events",
        delivered.len(),
        want.len()
    );
    // Once each; the one documented exception: a re-emitted event whose two copies ClickHouse
    // merged while the poller was between them (the surviving later copy comes again). Such
    // an event has one row left.
    let twice: Vec<&str> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    for id in &twice {
        let rows: u64 = w
            .client()
            .query("SELECT count() FROM events WHERE event_id = toUUID(?)")
            .bind(*id)
            .fetch_one()
            .await?;
        ensure!(rows == 1, "{id} delivered twice with {rows} rows stored");
    }
    let copied: HashSet<String> = copies.iter().map(|e| e.event_id.to_string()).collect();
    for id in &twice {
        ensure!(
            copied.contains(*id),
            "{id} delivered twice but never re-emitted"
        );
    }
    eprintln!(
        "{} events of {ws} delivered, {} twice (merged copies)",
        got.len(),
        twice.len()
    );
    // In offset order within each partition.
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for (_, p, o) in &got {
        let prev = last.insert(*p, *o);
        ensure!(
            prev.is_none_or(|x| x < *o),
            "partition {p}: {o} after {prev:?}"
        );
    }
    ensure!(terminate(consumer.0.as_mut().expect("running"))?.success());
    consumer.0 = None;
    Ok(())
}

/// The feed reads on a cluster (one shard, two replicas, `events` Distributed): migration 0009
/// runs ON CLUSTER, and the reads, starts, lag and notifier work through the Distributed table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_reads_the_distributed_table_on_a_cluster() -> Result<()> {
    let cluster = tokio::task::spawn_blocking(auditlog_testkit::PrivateCluster::start).await??;
    let cfg = cluster.config(&auditlog_testkit::unique_name("feedcl"));
    auditlog_store::migrate(&cfg).await?;
    let client = cfg.client();
    let mut events = synth(400, 72, 1);
    let ws = events[0].workspace_id.clone();
    let now = chrono::Utc::now();
    for (i, e) in events.iter_mut().enumerate() {
        if i % 4 == 0 {
            e.time = now - chrono::Duration::hours(6);
        }
    }
    let rows = |from: usize, to: usize| -> Vec<auditlog_store::events::EventRow> {
        events[from..to]
            .iter()
            .enumerate()
            .map(|(i, e)| {
                auditlog_store::events::EventRow::from_event(
                    e.clone(),
                    auditlog_store::events::RowContext {
                        partition: (i % 2) as i32,
                        offset: (from + i) as i64,
                        retention_days: 7,
                    },
                )
            })
            .collect()
    };
    auditlog_store::events::insert(&client, &rows(0, 200), "feedcl-1").await?;
    let reader = Reader::new(client.clone(), Dedup::LimitBy, Duration::from_secs(30));
    let f = Filter::default();
    let mut got = Vec::new();
    let pos = follow(&reader, &ws, FeedPosition::beginning(), &mut got).await?;
    ensure!(got.len() == 200, "{} of 200", got.len());
    let now_pos = reader
        .feed_start(&ws, auditlog_store::feed::FeedStart::Now)
        .await?;
    ensure!(
        now_pos == pos,
        "start=now {now_pos:?} is where the reader ended {pos:?}"
    );
    let notifier = auditlog_query::Notifier::new(client.clone());
    let wake = {
        let (n, ws, pos) = (notifier.clone(), ws.clone(), pos.clone());
        tokio::spawn(async move { n.changed_since(&ws, &pos, Duration::from_secs(20)).await })
    };
    auditlog_store::events::insert(&client, &rows(200, 400), "feedcl-2").await?;
    ensure!(wake.await?, "the notifier saw the second batch");
    ensure!(reader.feed_lag(&ws, &f, &pos).await?.0 == 200);
    follow(&reader, &ws, pos, &mut got).await?;
    let unique: HashSet<&String> = got.iter().collect();
    ensure!(
        got.len() == 400 && unique.len() == 400,
        "{} delivered, {} distinct",
        got.len(),
        unique.len()
    );
    Ok(())
}

/// Follows `ws`'s feed from `pos` until caught up, collecting the event ids; the end position.
async fn follow(
    reader: &Reader,
    ws: &str,
    mut pos: FeedPosition,
    got: &mut Vec<String>,
) -> Result<FeedPosition> {
    loop {
        let page = reader.feed_page(ws, &Filter::default(), &pos, 33).await?;
        got.extend(page.items.iter().map(|i| i.event.id.clone()));
        pos = page.next;
        if page.caught_up {
            return Ok(pos);
        }
    }
}
