//! Committed outbox events reach ClickHouse exactly once each, byte for byte as written;
//! rolled-back ones never appear. PostgreSQL and MariaDB, each with a private server, the real
//! `auditlog relay` and `auditlog consume` on the shared test stack.

mod ingest_support;
mod relay_support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{ensure, Result};
use auditlog_event::AuditEvent;
use ingest_support::{free_listen_addr, synth, terminate, Guard, World};
use relay_support::{read_topic, relay_env, spawn_relay, wait_health, Kind, Outbox};
use uuid::Uuid;

/// Writes `part` in transactions of 10, rolling back every 7th (counted from `offset`).
async fn write(
    outbox: &Outbox,
    part: &[AuditEvent],
    offset: usize,
    committed: &mut Vec<AuditEvent>,
    rolled_back: &mut HashSet<Uuid>,
) -> Result<()> {
    for (i, tx) in part.chunks(10).enumerate() {
        let commit = (offset + i) % 7 != 3;
        outbox.transaction(tx, commit).await?;
        if commit {
            committed.extend(tx.iter().cloned());
        } else {
            rolled_back.extend(tx.iter().map(|e| e.event_id));
        }
    }
    Ok(())
}

async fn committed_once_rolled_back_never(kind: Kind) -> Result<()> {
    let w = World::new("relayonce", 3).await?;
    let outbox = Outbox::start(kind, &w, 4).await?;
    let events = synth(3_000, 19, 6);
    let mut committed = Vec::new();
    let mut rolled_back = HashSet::new();
    // Two thirds before the relay starts (a backlog), the rest while it runs (woken by NOTIFY
    // on PostgreSQL, by its poll on MariaDB). Every 7th transaction is rolled back.
    let (before, after) = events.split_at(2_000);
    write(&outbox, before, 0, &mut committed, &mut rolled_back).await?;
    let listen = free_listen_addr()?;
    let _relay = Guard(Some(spawn_relay(
        &w,
        "relay",
        &relay_env(&outbox.url, &listen),
    )?));
    let mut consumer = Guard(Some(w.spawn_consumer("consumer")?));
    write(&outbox, after, 200, &mut committed, &mut rolled_back).await?;
    let n = committed.len();
    ensure!(!rolled_back.is_empty() && n > 2_000);
    outbox.wait_drained(Duration::from_secs(60)).await?;

    // The topic: every committed event, byte for byte the JSON the producer would send,
    // keyed by its workspace; nothing rolled back.
    let (brokers, topic) = (w.brokers.clone(), w.topic.clone());
    let records = tokio::task::spawn_blocking(move || {
        read_topic(&brokers, &topic, n, Duration::from_secs(60))
    })
    .await??;
    let wanted: HashMap<Uuid, &AuditEvent> = committed.iter().map(|e| (e.event_id, e)).collect();
    for r in &records {
        ensure!(
            !rolled_back.contains(&r.event_id),
            "rolled-back event {} published",
            r.event_id
        );
        let e = wanted.get(&r.event_id).copied();
        ensure!(e.is_some(), "unknown event {} in the topic", r.event_id);
        let e = e.expect("checked");
        ensure!(
            r.value == e.to_json_bytes(),
            "event {}: payload differs",
            r.event_id
        );
        ensure!(
            r.key == e.workspace_id,
            "event {}: key {}",
            r.event_id,
            r.key
        );
    }
    let distinct: HashSet<Uuid> = records.iter().map(|r| r.event_id).collect();
    ensure!(
        distinct.len() == n,
        "{} of {n} committed events in the topic",
        distinct.len()
    );
    ensure!(
        records.len() == n,
        "{} records for {n} events: duplicates without a crash",
        records.len()
    );

    // ClickHouse: exactly the committed events, once each.
    w.wait_rows(n as u64, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.assert_exactly(n as u64).await?;
    let stored: Vec<String> = w
        .client()
        .query("SELECT toString(event_id) FROM events")
        .fetch_all()
        .await?;
    let stored: HashSet<Uuid> = stored.iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
    ensure!(
        stored == wanted.keys().copied().collect::<HashSet<_>>(),
        "stored ids differ from the committed ones"
    );

    // Health and metrics tell the same story.
    let body = wait_health(&listen, 200, "\"backlog_rows\":0", Duration::from_secs(10)).await?;
    ensure!(body.contains("\"status\":\"ok\""), "{body}");
    let shipped = relay_support::metric(&listen, "auditlog_relay_rows_shipped_total").await?;
    ensure!(shipped as usize == n, "shipped {shipped}, committed {n}");
    ensure!(terminate(consumer.0.as_mut().expect("running"))?.success());
    consumer.0 = None;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_committed_once_rolled_back_never() -> Result<()> {
    committed_once_rolled_back_never(Kind::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_committed_once_rolled_back_never() -> Result<()> {
    committed_once_rolled_back_never(Kind::MariaDb).await
}
