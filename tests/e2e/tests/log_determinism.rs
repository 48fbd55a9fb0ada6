//! Issue 18, determinism: the same topic ingested and sequenced twice, once cleanly (one
//! consumer, one sequencer, into database A) and once under faults (consumers SIGKILLed at
//! random moments and restarted, two consumers rebalancing, the sequencer SIGKILLed once and
//! restarted, into database B), gives byte-identical logs: the same heads (size and root),
//! the same leaves in the same order, the same tiles. Short by default (3,000 events);
//! `AUDITLOG_LONG_TESTS=1` runs 60,000.

mod ingest_support;
mod log_support;

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use ingest_support::{messages, synth, terminate, Guard, World};
use log_support::{
    checkpoints_consistent, each_event_once, heads_match_the_events, key_file, logs, sequencer_env,
    spawn_sequencer, wait_checkpointed, wait_committed,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_run_builds_the_same_logs_as_a_clean_run() -> Result<()> {
    let long = std::env::var_os("AUDITLOG_LONG_TESTS").is_some();
    let n: usize = if long { 60_000 } else { 3_000 };
    let a = World::new("logdet", 3).await?;
    // Run B reads the SAME topic into a database and consumer group of its own.
    let b_name = auditlog_testkit::unique_name("logdetb");
    let mut b = World {
        clickhouse: auditlog_testkit::migrated_database(
            &auditlog_testkit::clickhouse_url(),
            &b_name,
        )
        .await?,
        group: format!("{b_name}_group"),
        name: b_name,
        brokers: a.brokers.clone(),
        topic: a.topic.clone(),
        dlq_topic: a.dlq_topic.clone(),
        env: Vec::new(),
    };
    // Small time-cut batches: many recorded cuts to reproduce after each kill.
    b.consumer_setting("batch_max_rows", "200");
    b.consumer_setting("batch_max_wait", "100ms");
    let (key, verifier) = key_file("log.test")?;
    let env = sequencer_env(&key, "");

    let events = messages(&synth(n, 18, 8));
    // Over about 30 s: the faulty run's consumers always find rows to store before each kill.
    let producer = a.produce_in_background(events, n / 20, Duration::from_millis(1500));

    // Clean run A, throughout.
    let mut clean_consumer = Guard(Some(a.spawn_consumer("clean")?));
    let mut clean_sequencer = Guard(Some(spawn_sequencer(&a, "seq_clean", &env)?));

    // Faulty run B.
    let mut seq_b = Guard(Some(spawn_sequencer(&b, "seq_b1", &env)?));
    b.kill_consumers_at_random_moments(2).await?;
    if let Some(s) = seq_b.0.as_mut() {
        s.kill()?; // SIGKILL, mid-run
        s.wait()?;
    }
    eprintln!(
        "sequencer B killed with {} leaves committed",
        log_support::committed(&b.client()).await?
    );
    seq_b = Guard(Some(spawn_sequencer(&b, "seq_b2", &env)?));
    b.kill_consumers_at_random_moments(1).await?;
    // Two consumers in the group: the second one's join moves partitions (a rebalance).
    let mut one = Guard(Some(b.spawn_consumer("two_a")?));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut two = Guard(Some(b.spawn_consumer("two_b")?));
    tokio::time::sleep(Duration::from_secs(8)).await;
    for g in [&mut one, &mut two] {
        let status = terminate(g.0.as_mut().context("running")?)?;
        g.0 = None;
        ensure!(status.success(), "consumer exited with {status}");
    }
    producer.await??;
    // The last consumer joins a group of its own and replays the topic from the start (one
    // more fault: a replay; the recorded batch cuts make it write nothing twice). A fresh group
    // also steers clear of Tansu 0.6 leaving a group whose members just left stuck without an
    // assignment (seen here: "partitions not consumed by anyone in the group" for minutes).
    b.group = format!("{}_final", b.name);
    b.final_consumer_stores_exactly(n as u64).await?;
    a.wait_rows(n as u64, Duration::from_secs(120)).await?;
    a.assert_exactly(n as u64).await?;

    let timeout = Duration::from_secs(if long { 600 } else { 120 });
    wait_committed(&a.client(), n as u64, timeout).await?;
    wait_committed(&b.client(), n as u64, timeout).await?;
    wait_checkpointed(&b.client(), Duration::from_secs(30)).await?;
    for g in [&mut clean_sequencer, &mut seq_b, &mut clean_consumer] {
        let status = terminate(g.0.as_mut().context("running")?)?;
        g.0 = None;
        ensure!(status.success(), "exited with {status}");
    }

    let (clean, faulty) = (logs(&a.client()).await?, logs(&b.client()).await?);
    each_event_once(&clean, n)?;
    each_event_once(&faulty, n)?;
    ensure!(
        clean.len() == faulty.len(),
        "{} logs vs {}",
        clean.len(),
        faulty.len()
    );
    for (c, f) in clean.iter().zip(&faulty) {
        ensure!(
            c.workspace == f.workspace,
            "{} vs {}",
            c.workspace,
            f.workspace
        );
        ensure!(
            c.size == f.size && c.root == f.root,
            "{}: clean head {} vs faulty {}",
            c.workspace,
            c.size,
            f.size
        );
        ensure!(
            c.leaves == f.leaves,
            "{}: leaf sequences differ",
            c.workspace
        );
        ensure!(c.tiles == f.tiles, "{}: tiles differ", c.workspace);
    }
    // And both are the logs the events table itself gives (partition, offset order).
    heads_match_the_events(&a.client()).await?;
    let checked = checkpoints_consistent(&b.client(), &verifier).await?;
    eprintln!(
        "{} logs identical; {checked} consecutive checkpoints of the faulty run consistent",
        clean.len()
    );
    ensure!(checked > 0, "no consecutive checkpoints to check");
    Ok(())
}
