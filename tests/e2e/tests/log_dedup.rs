//! Re-emitted copies: an event produced again later (a producer retry long after the first
//! copy, a replayed dead letter) lands at a later offset, as a second row until merges; it is
//! still ONE leaf of its log. Copies within one sequencer step and copies arriving after the
//! first one was committed are both skipped, and counted in
//! `auditlog_log_duplicates_skipped_total`.

mod ingest_support;
mod log_support;

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use ingest_support::{free_listen_addr, http_get, messages, synth, terminate, Guard, World};
use log_support::{
    each_event_once, key_file, logs, sequencer_env, spawn_sequencer, wait_committed,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_emitted_event_is_one_leaf() -> Result<()> {
    const N: usize = 600;
    let w = World::new("logdup", 2).await?;
    let (key, _) = key_file("log.test")?;
    let listen = free_listen_addr()?;
    let env = sequencer_env(&key, &listen);
    let msgs = messages(&synth(N, 77, 4));
    // The first 300, then copies of 50 of them mixed with the next 300 (copies within a step).
    let mut second: Vec<_> = msgs[300..].to_vec();
    second.extend_from_slice(&msgs[..50]);
    w.produce(&msgs[..300]).await?;
    let mut consumer = Guard(Some(w.spawn_consumer("c")?));
    let mut sequencer = Guard(Some(spawn_sequencer(&w, "seq", &env)?));
    wait_committed(&w.client(), 300, Duration::from_secs(60)).await?;
    w.produce(&second).await?;
    // Copies of 100 committed events, once more, after everything.
    w.produce(&msgs[100..200]).await?;
    // Copies may already be merged away (ReplacingMergeTree), so wait for the offsets: every
    // one of the N + 150 messages stored (the newest copy is the one a merge keeps).
    wait_offsets(&w, (N + 150) as u64, Duration::from_secs(60)).await?;
    wait_committed(&w.client(), N as u64, Duration::from_secs(60)).await?;
    // Give the sequencer time to read the last copies (it must skip them all).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let state = logs(&w.client()).await?;
    each_event_once(&state, N)?;
    let (code, metrics) = http_get(&listen, "/metrics").await?;
    ensure!(code == 200, "/metrics answered {code}");
    let skipped = metric(&metrics, "auditlog_log_duplicates_skipped_total")?;
    ensure!(
        skipped >= 150.0,
        "{skipped} duplicates counted, expected 150\n{metrics}"
    );
    let leaves = metric(&metrics, "auditlog_log_leaves_appended_total")?;
    ensure!(leaves == N as f64, "{leaves} leaves counted, expected {N}");
    let (code, body) = http_get(&listen, "/health/ready").await?;
    ensure!(code == 200, "/health/ready answered {code}: {body}");
    let (code, _) = http_get(&listen, "/health/live").await?;
    ensure!(code == 200, "/health/live answered {code}");
    for g in [&mut sequencer, &mut consumer] {
        let status = terminate(g.0.as_mut().context("running")?)?;
        g.0 = None;
        ensure!(status.success(), "exited with {status}");
    }
    Ok(())
}

/// Waits until the partitions' highest stored offsets account for `n` messages.
async fn wait_offsets(w: &World, n: u64, timeout: Duration) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        let seen: u64 = w
            .client()
            .query(
                "SELECT toUInt64(sum(o)) FROM (SELECT max(kafka_offset) + 1 AS o FROM events \
                 GROUP BY kafka_partition)",
            )
            .fetch_one()
            .await?;
        if seen >= n {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < timeout,
            "{seen} of {n} messages stored after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of an unlabelled series in a Prometheus text page.
fn metric(page: &str, name: &str) -> Result<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .with_context(|| format!("no {name} in\n{page}"))
}
