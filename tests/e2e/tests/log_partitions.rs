//! The topic's partition count changes mid-run: partitions are added, the consumer restarted,
//! more events produced (some workspaces now hash to a new partition). Every event is a leaf
//! exactly once, no committed leaf changes (the logs before the change are prefixes of the
//! logs after it), and every checkpoint is consistent with the one before (RFC 9162
//! consistency proofs from the stored tiles, verified with `auditlog_tlog`).

mod ingest_support;
mod log_support;

use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use ingest_support::{messages, synth, terminate, Guard, World};
use log_support::{
    checkpoints_consistent, each_event_once, key_file, logs, sequencer_env, spawn_sequencer,
    wait_checkpointed, wait_committed,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

async fn add_partitions(brokers: &str, topic: &str, total: usize) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin
        .create_partitions([&NewPartitions::new(topic, total)], &opts)
        .await?
    {
        if let Err((t, code)) = r {
            bail!("add partitions to {t}: {code}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_partitions_keep_every_event_once_and_every_checkpoint_consistent() -> Result<()> {
    const HALF: usize = 500;
    let w = World::new("logparts", 2).await?;
    let (key, verifier) = key_file("log.test")?;
    let env = sequencer_env(&key, "");
    // One generator: the second half has the same workspaces (some of which move partition).
    let all = messages(&synth(2 * HALF, 5, 6));
    let (first, second) = all.split_at(HALF);
    w.produce(first).await?;
    let mut consumer = Guard(Some(w.spawn_consumer("before")?));
    let mut sequencer = Guard(Some(spawn_sequencer(&w, "seq", &env)?));
    wait_committed(&w.client(), HALF as u64, Duration::from_secs(60)).await?;
    wait_checkpointed(&w.client(), Duration::from_secs(30)).await?;
    let before = logs(&w.client()).await?;

    add_partitions(&w.brokers, &w.topic, 5).await?;
    // A restarted consumer sees the new partitions at once (not at the next metadata refresh).
    let status = terminate(consumer.0.as_mut().context("running")?)?;
    ensure!(status.success(), "consumer exited with {status}");
    consumer = Guard(Some(w.spawn_consumer("after")?));
    w.produce(second).await?;
    w.wait_rows(2 * HALF as u64, Duration::from_secs(90)).await?;
    wait_committed(&w.client(), 2 * HALF as u64, Duration::from_secs(60)).await?;
    wait_checkpointed(&w.client(), Duration::from_secs(30)).await?;

    let in_new: u64 = w
        .client()
        .query("SELECT count() FROM log_leaves FINAL WHERE kafka_partition >= 2")
        .fetch_one()
        .await?;
    ensure!(in_new > 0, "no event went to an added partition");
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
    ensure!(checked >= before.len(), "only {checked} consecutive checkpoints checked");
    for g in [&mut sequencer, &mut consumer] {
        let status = terminate(g.0.as_mut().context("running")?)?;
        g.0 = None;
        ensure!(status.success(), "exited with {status}");
    }
    Ok(())
}
