//! The topic's partition count changes mid-run: events first go to the partition their
//! workspace hashes to among 2, then among 4, as a producer's partitioner does once partitions
//! are added (the test broker, Tansu, refuses CreatePartitions with UnsupportedFeature, so the
//! topic has 4 from the start, the last two unused until "the change", and the messages are
//! placed explicitly); the consumer is restarted at the change. Every event is a leaf
//! exactly once, no committed leaf changes (the logs before the change are prefixes of the
//! logs after it), and every checkpoint is consistent with the one before (RFC 9162
//! consistency proofs from the stored tiles, verified with `auditlog_tlog`).

mod ingest_support;
mod log_support;

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use ingest_support::{messages, synth, terminate, Guard, World};
use log_support::{
    checkpoints_consistent, each_event_once, key_file, logs, sequencer_env, spawn_sequencer,
    wait_checkpointed, wait_committed,
};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The partition a workspace's key goes to among `count` (a stable hash, as a partitioner).
fn partition_of(key: &str, count: u32) -> i32 {
    let h = key.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    (h % count) as i32
}

/// Produces each message to the partition its key maps to among `count` partitions.
async fn produce_as_if(w: &World, msgs: &[(String, Vec<u8>)], count: u32) -> Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &w.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;
    let mut acks = Vec::new();
    for (k, v) in msgs {
        let record = FutureRecord::to(&w.topic)
            .key(k.as_bytes())
            .payload(v.as_slice())
            .partition(partition_of(k, count));
        acks.push(producer.send_result(record).map_err(|(e, _)| e)?);
    }
    for a in acks {
        a.await?.map_err(|(e, _)| e)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_partitions_keep_every_event_once_and_every_checkpoint_consistent() -> Result<()> {
    const HALF: usize = 500;
    let w = World::new("logparts", 4).await?;
    let (key, verifier) = key_file("log.test")?;
    let env = sequencer_env(&key, "");
    // One generator: the second half has the same workspaces (some of which move partition).
    let all = messages(&synth(2 * HALF, 5, 6));
    let (first, second) = all.split_at(HALF);
    produce_as_if(&w, first, 2).await?;
    let mut consumer = Guard(Some(w.spawn_consumer("before")?));
    let mut sequencer = Guard(Some(spawn_sequencer(&w, "seq", &env)?));
    wait_committed(&w.client(), HALF as u64, Duration::from_secs(60)).await?;
    wait_checkpointed(&w.client(), Duration::from_secs(30)).await?;
    let before = logs(&w.client()).await?;

    // "Partitions added": a restarted consumer, the second half placed among 4 partitions.
    let status = terminate(consumer.0.as_mut().context("running")?)?;
    ensure!(status.success(), "consumer exited with {status}");
    consumer = Guard(Some(w.spawn_consumer("after")?));
    produce_as_if(&w, second, 4).await?;
    w.wait_rows(2 * HALF as u64, Duration::from_secs(90))
        .await?;
    wait_committed(&w.client(), 2 * HALF as u64, Duration::from_secs(60)).await?;
    wait_checkpointed(&w.client(), Duration::from_secs(30)).await?;

    let in_new: u64 = w
        .client()
        .query("SELECT count() FROM log_leaves FINAL WHERE kafka_partition >= 2")
        .fetch_one()
        .await?;
    ensure!(in_new > 0, "no event went to an added partition");
    let moved: u64 = w
        .client()
        .query(
            "SELECT count() FROM (SELECT workspace_id FROM log_leaves FINAL GROUP BY workspace_id \
             HAVING uniqExact(kafka_partition) > 1)",
        )
        .fetch_one()
        .await?;
    ensure!(moved > 0, "no workspace moved partition");
    let after = logs(&w.client()).await?;
    each_event_once(&after, 2 * HALF)?;
    for b in &before {
        let a = after
            .iter()
            .find(|a| a.workspace == b.workspace)
            .with_context(|| format!("{} lost its log", b.workspace))?;
        ensure!(
            a.leaves.len() >= b.leaves.len() && a.leaves[..b.leaves.len()] == b.leaves[..],
            "{}: a committed leaf changed",
            b.workspace
        );
    }
    let checked = checkpoints_consistent(&w.client(), &verifier).await?;
    eprintln!("{in_new} leaves from added partitions; {checked} checkpoint pairs consistent");
    ensure!(
        checked >= before.len(),
        "only {checked} consecutive checkpoints checked"
    );
    for g in [&mut sequencer, &mut consumer] {
        let status = terminate(g.0.as_mut().context("running")?)?;
        g.0 = None;
        ensure!(status.success(), "exited with {status}");
    }
    Ok(())
}
