//! End to end through the real `auditlog consume` binary, the test broker and ClickHouse:
//! volume and content, poison messages and the dead-letter topic, two consumers sharing a
//! group, retention by TTL and plan changes.

mod ingest_support;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{ensure, Result};
use auditlog_store::events::{EventRow, RowContext};
use ingest_support::{
    aged_events, ages_in, messages, retention_in, synth, terminate, Guard, World,
};

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
            RowContext {
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

/// Poison mixed into good events (and one event ClickHouse refuses): the good ones land, each
/// poison one is in the dead-letter topic with its reason, original bytes and source; replay
/// after a fix lands it, and a second replay does not duplicate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_topic_and_replays_after_a_fix() -> Result<()> {
    let mut w = World::new("ingestdlq", 2).await?;
    w.consumer_setting("max_message_bytes", "8192");
    let good = synth(300, 21, 3);
    let mut fixable = synth(1, 22, 1).remove(0);
    let mut broken: serde_json::Value = serde_json::from_slice(&fixable.to_json_bytes())?;
    broken.as_object_mut().expect("object").remove("actor");
    let mut big = synth(1, 23, 1).remove(0);
    big.request = serde_json::json!({ "blob": "x".repeat(10_000) }).into();
    let mut v2: serde_json::Value = serde_json::from_slice(&synth(1, 24, 1)[0].to_json_bytes())?;
    v2["version"] = 2.into();
    // A valid event ClickHouse refuses (a constraint of this test's table): isolated from its
    // batch, dead-lettered with its original bytes read back from the topic.
    w.client()
        .query(
            &layout(&w)
                .await?
                .alter_events("ADD CONSTRAINT not_refused CHECK description != 'refuse me'"),
        )
        .execute()
        .await?;
    let mut refused = synth(1, 25, 1).remove(0);
    refused.description = "refuse me".into();
    let poison: Vec<(&str, Vec<u8>)> = vec![
        ("rejected_by_clickhouse", refused.to_json_bytes()),
        ("not_json", b"{this is not json".to_vec()),
        ("invalid_utf8", b"{\"a\": \"\xff\xfe\"}".to_vec()),
        ("invalid_field", serde_json::to_vec(&broken)?),
        ("too_large", big.to_json_bytes()),
        ("unknown_version", serde_json::to_vec(&v2)?),
    ];
    let mut msgs = messages(&good);
    for (i, (_, bytes)) in poison.iter().enumerate() {
        msgs.insert(i * 50 + 7, (format!("poison-{i}"), bytes.clone()));
    }
    let mut consumer = Guard(Some(w.spawn_consumer("a")?));
    w.produce(&msgs).await?;
    w.wait_rows(300, Duration::from_secs(120)).await?;
    let dead = wait_dead_letters(&w, poison.len()).await?;
    for (code, bytes) in &poison {
        let d = dead
            .iter()
            .find(|d| d.code == *code)
            .ok_or_else(|| anyhow::anyhow!("no dead letter with reason {code}: {dead:?}"))?;
        use rdkafka::Message;
        ensure!(
            d.message.payload() == Some(bytes.as_slice()),
            "{code}: payload differs"
        );
        ensure!(
            d.source.starts_with(&format!("{}/", w.topic)),
            "{code}: source {}",
            d.source
        );
        ensure!(!d.reason.is_empty());
    }
    w.assert_exactly(300).await?;
    let listed = w.cli(&["dlq", "list"])?;
    ensure!(
        listed.contains("unknown_version") && listed.contains("6 dead-lettered"),
        "{listed}"
    );

    // Fix 1: a corrected payload for the schema violation.
    let fixed_path = std::env::temp_dir().join(format!("{}_fixed.json", w.name));
    fixable.description = "fixed by hand".into();
    std::fs::write(&fixed_path, fixable.to_json_bytes())?;
    let d = dead
        .iter()
        .find(|d| d.code == "invalid_field")
        .expect("found above");
    let at = format!("{}:{}", d.partition, d.offset);
    w.cli(&[
        "dlq",
        "replay",
        "--offset",
        &at,
        "--payload",
        fixed_path.to_str().expect("utf8"),
    ])?;
    w.wait_rows(301, Duration::from_secs(60)).await?;
    // Fix 2: a consumer that accepts bigger events, then replay by reason.
    let status = terminate(consumer.0.as_mut().expect("running"))?;
    ensure!(status.success(), "{status}");
    w.consumer_setting("max_message_bytes", "1048576");
    consumer.0 = Some(w.spawn_consumer("b")?);
    w.cli(&["dlq", "replay", "--reason", "too_large"])?;
    w.wait_rows(302, Duration::from_secs(60)).await?;
    // Replaying the same again is skipped: the events are stored.
    let again = w.cli(&[
        "dlq",
        "replay",
        "--offset",
        &at,
        "--payload",
        fixed_path.to_str().expect("utf8"),
    ])?;
    ensure!(again.contains("already stored"), "{again}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.assert_exactly(302).await?;
    let stored: String = w
        .client()
        .query("SELECT description FROM events WHERE event_id = ?")
        .bind(fixable.event_id.to_string())
        .fetch_one()
        .await?;
    ensure!(stored == "fixed by hand");
    ensure!(terminate(consumer.0.as_mut().expect("running"))?.success());
    consumer.0 = None;
    Ok(())
}

async fn wait_dead_letters(
    w: &World,
    n: usize,
) -> Result<Vec<auditlog_sink::replay::DeadLettered>> {
    for _ in 0..120 {
        let kafka = auditlog_producer::KafkaConfig {
            brokers: w.brokers.clone(),
            ..Default::default()
        };
        let d = auditlog_sink::replay::read_all(&kafka, &w.dlq_topic).await?;
        if d.len() >= n {
            return Ok(d);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("fewer than {n} dead letters after 60 s")
}

/// Two consumers in one group; one is stopped mid-stream: nothing lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_share_a_group_and_one_leaves() -> Result<()> {
    const N: usize = 40_000;
    let w = World::new("ingest2c", 4).await?;
    let events = messages(&synth(N, 31, 16));
    let mut a = Guard(Some(w.spawn_consumer("a")?));
    let mut b = Guard(Some(w.spawn_consumer("b")?));
    tokio::time::sleep(Duration::from_secs(4)).await;
    w.produce(&events[..N / 2]).await?;
    w.wait_rows(N as u64 / 4, Duration::from_secs(120)).await?;
    ensure!(terminate(b.0.as_mut().expect("running"))?.success());
    b.0 = None;
    w.produce(&events[N / 2..]).await?;
    w.wait_rows(N as u64, Duration::from_secs(180)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.assert_exactly(N as u64).await?;
    ensure!(terminate(a.0.as_mut().expect("running"))?.success());
    a.0 = None;
    Ok(())
}

/// Retention: rows beyond their workspace's retention disappear when TTL is applied, a plan
/// change (downgrade and upgrade) applies to stored rows, and rows ingested afterwards follow
/// the new plan. (A row already beyond its retention when inserted is dropped at insert.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_follows_the_plan_for_stored_and_new_rows() -> Result<()> {
    let mut w = World::new("ingestttl", 1).await?;
    w.consumer_setting("plans_refresh", "500ms");
    let (ws_a, ws_b) = ("ws_ttl_a", "ws_ttl_b");
    let shown = w.cli(&["plan", "get", ws_a])?;
    ensure!(
        shown.contains("free (7 days)") && shown.contains("default"),
        "{shown}"
    );
    for ws in [ws_a, ws_b] {
        w.cli(&["plan", "set", ws, "enterprise", "--unlimited"])?;
    }
    let shown = w.cli(&["plan", "get", ws_a])?;
    ensure!(shown.contains("enterprise (unlimited)"), "{shown}");
    // Events aged 3, 10, 30 and 100 days in each workspace.
    let events = aged_events(&[ws_a, ws_b], &[3, 10, 30, 100], 41);
    let mut seed = 48;
    let mut consumer = Guard(Some(w.spawn_consumer("a")?));
    w.produce(&messages(&events)).await?;
    w.wait_rows(8, Duration::from_secs(60)).await?;
    ensure!(retention_of(&w, ws_a).await? == vec![0]);
    materialize_ttl(&w).await?;
    ensure!(ages(&w, ws_a).await? == vec![3, 10, 30, 100]);

    // Downgrades: a to pro (90 days), b to free (7 days); TTL then deletes the older rows.
    w.cli(&["plan", "set", ws_a, "pro"])?;
    w.cli(&["plan", "set", ws_b, "free"])?;
    wait_mutations(&w).await?;
    ensure!(retention_of(&w, ws_a).await? == vec![90]);
    ensure!(retention_of(&w, ws_b).await? == vec![7]);
    materialize_ttl(&w).await?;
    ensure!(
        ages(&w, ws_a).await? == vec![3, 10, 30],
        "{:?}",
        ages(&w, ws_a).await?
    );
    ensure!(
        ages(&w, ws_b).await? == vec![3],
        "{:?}",
        ages(&w, ws_b).await?
    );
    // Upgrade b to pro: the stored row lives longer; deleted rows do not come back.
    w.cli(&["plan", "set", ws_b, "pro"])?;
    wait_mutations(&w).await?;
    ensure!(retention_of(&w, ws_b).await? == vec![90]);
    ensure!(ages(&w, ws_b).await? == vec![3]);
    // New rows follow the new plans once the consumer's cache refreshed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut later = Vec::new();
    for ws in [ws_a, ws_b] {
        seed += 1;
        let mut e = synth(1, seed, 1).remove(0);
        e.workspace_id = ws.into();
        later.push(e);
    }
    w.produce(&messages(&later)).await?;
    w.wait_rows(6, Duration::from_secs(60)).await?;
    ensure!(retention_of(&w, ws_a).await? == vec![90]);
    ensure!(retention_of(&w, ws_b).await? == vec![90]);
    ensure!(terminate(consumer.0.as_mut().expect("running"))?.success());
    consumer.0 = None;
    Ok(())
}

async fn retention_of(w: &World, ws: &str) -> Result<Vec<u32>> {
    retention_in(&w.client(), "events", ws).await
}

async fn ages(w: &World, ws: &str) -> Result<Vec<i64>> {
    ages_in(&w.client(), "events", ws).await
}

/// One server or a cluster: where the events' rows are (`events` or `events_local`).
async fn layout(w: &World) -> Result<auditlog_store::Layout> {
    Ok(auditlog_store::Layout::detect(&w.client())
        .await?
        .expect("migrated"))
}

async fn materialize_ttl(w: &World) -> Result<()> {
    let layout = layout(w).await?;
    w.client()
        .query(&layout.alter_events("MATERIALIZE TTL"))
        .with_setting("mutations_sync", "2")
        .execute()
        .await?;
    w.client()
        .query(&layout.optimize_events())
        .execute()
        .await?;
    Ok(())
}

async fn wait_mutations(w: &World) -> Result<()> {
    // Every replica's mutations on a cluster.
    let layout = layout(w).await?;
    let mutations = match &layout {
        auditlog_store::Layout::Single => "system.mutations".to_owned(),
        auditlog_store::Layout::Cluster(c) => {
            format!("clusterAllReplicas('{c}', system.mutations)")
        }
    };
    for _ in 0..240 {
        let pending: u64 = w
            .client()
            .query(&format!(
                "SELECT count() FROM {mutations} WHERE database = ? AND table = ? AND NOT is_done"
            ))
            .bind(&w.clickhouse.database)
            .bind(layout.events_rows())
            .fetch_one()
            .await?;
        if pending == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("mutations still running after 60 s")
}
