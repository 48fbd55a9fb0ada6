//! The sequencer with a real `auditlog witness`: every log's checkpoints are cosigned (the
//! cosignature lines stored verify with the witness's key); with the witness SIGKILLed,
//! sequencing and signing go on and the failures are counted; once it is back, the pending
//! checkpoints are sent with consistency proofs from what it last cosigned and every log is
//! cosigned at its head again.

mod ingest_support;
mod log_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use auditlog_tlog::{cosignature, Checkpoint, KeyKind, Note, Signature, Signer, Verifier};
use ingest_support::{free_listen_addr, http_get, messages, synth, terminate, Guard, World};
use log_support::{key_file, sequencer_env, wait_checkpointed, wait_committed};

async fn spawn_witness(config: &Path, listen: &str) -> Result<Guard> {
    let child = Command::new(auditlog_testkit::auditlog_bin())
        .arg("--config")
        .arg(config)
        .arg("witness")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut guard = Guard(Some(child));
    let start = Instant::now();
    loop {
        if let Some(status) = guard.0.as_mut().context("witness")?.try_wait()? {
            bail!("auditlog witness exited with {status}");
        }
        if let Ok((200, _)) = http_get(listen, "/health/ready").await {
            return Ok(guard);
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("auditlog witness not ready after 20 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs whose newest cosignature is not at their head.
async fn uncosigned(client: &clickhouse::Client) -> Result<u64> {
    Ok(client
        .query(
            "SELECT count() FROM (SELECT workspace_id, tree_size FROM log_heads FINAL) AS h \
             LEFT JOIN (SELECT workspace_id, max(tree_size) AS c FROM log_cosignatures \
             GROUP BY workspace_id) AS k USING workspace_id WHERE k.c < h.tree_size",
        )
        .fetch_one()
        .await?)
}

async fn wait_cosigned(client: &clickhouse::Client, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let n = uncosigned(client).await?;
        if n == 0 {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("{n} logs not cosigned at their head after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn metric(page: &str, prefix: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_cosigned_and_a_witness_down_stops_nothing() -> Result<()> {
    let w = World::new("logwit", 2).await?;
    let (log_key, log_verifier) = key_file("log.test")?;
    let dir = log_key.parent().context("key dir")?.to_owned();
    let witness = Signer::generate("witness.test", KeyKind::Cosignature)?;
    let witness_key = dir.join("witness.key");
    std::fs::write(&witness_key, format!("{}\n", witness.private_key()))?;
    let witness_listen = free_listen_addr()?;
    let witness_config = dir.join("witness.toml");
    std::fs::write(
        &witness_config,
        format!(
            "[witness]\nlisten = \"{witness_listen}\"\nkey_file = \"{}\"\nstate_dir = \"{}\"\n\n\
             [[witness.logs]]\norigin_prefix = \"log.test/\"\nverifier_key = \"{log_verifier}\"\n",
            witness_key.display(),
            dir.join("state").display()
        ),
    )?;
    let seq_config = dir.join("sequencer.toml");
    std::fs::write(
        &seq_config,
        format!(
            "[sequencer]\nwitness_timeout = \"1s\"\n\n[[sequencer.witnesses]]\nurl = \"http://{witness_listen}\"\nverifier_key = \"{}\"\n",
            witness.verifier()
        ),
    )?;
    let mut wit = spawn_witness(&witness_config, &witness_listen).await?;

    let listen = free_listen_addr()?;
    let env = sequencer_env(&log_key, &listen);
    let all = messages(&synth(600, 31, 4));
    w.produce(&all[..300]).await?;
    let mut consumer = Guard(Some(w.spawn_consumer("c")?));
    let log = std::fs::File::create(w.log_path("seq"))?;
    let mut sequencer = Guard(Some(
        w.command(&["--config", &seq_config.display().to_string(), "sequencer"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    ));
    let client = w.client();
    wait_committed(&client, 300, Duration::from_secs(60)).await?;
    wait_cosigned(&client, Duration::from_secs(30)).await?;

    // Every stored cosignature verifies with the witness's key over its checkpoint's body.
    let rows: Vec<(String, u64, String, String)> = client
        .query(
            "SELECT c.workspace_id, c.tree_size, c.signature_line, k.note FROM log_cosignatures AS c \
             INNER JOIN log_checkpoints AS k ON k.workspace_id = c.workspace_id AND k.tree_size = c.tree_size",
        )
        .fetch_all()
        .await?;
    ensure!(!rows.is_empty(), "no cosignature stored");
    let wv: Verifier = witness.verifier();
    for (ws, size, line, note) in &rows {
        let body = Note::parse(note)?.text;
        ensure!(Checkpoint::parse(&body)?.size == *size, "{ws}: size");
        let sig = Signature::parse_line(line)?;
        cosignature::verify(&wv, &body, &sig).with_context(|| format!("{ws}@{size}"))?;
    }

    // The witness down: sequencing and signing go on, failures counted.
    if let Some(c) = wit.0.as_mut() {
        c.kill()?;
        c.wait()?;
    }
    wit.0 = None;
    w.produce(&all[300..]).await?;
    wait_committed(&client, 600, Duration::from_secs(60)).await?;
    wait_checkpointed(&client, Duration::from_secs(30)).await?;
    ensure!(
        uncosigned(&client).await? > 0,
        "cosigned with the witness down?"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, page) = http_get(&listen, "/metrics").await?;
    let failures = metric(&page, "auditlog_log_witness_failures_total{witness=\"0\"}");
    ensure!(failures > 0.0, "no witness failure counted:\n{page}");

    // Back: the pending checkpoints are cosigned, with proofs from what it cosigned before.
    let _wit = spawn_witness(&witness_config, &witness_listen).await?;
    wait_cosigned(&client, Duration::from_secs(30)).await?;
    let (_, page) = http_get(&listen, "/metrics").await?;
    ensure!(
        metric(
            &page,
            "auditlog_log_witness_cosignatures_total{witness=\"0\"}"
        ) > rows.len() as f64 - 1.0,
        "cosignatures not counted:\n{page}"
    );
    for g in [&mut sequencer, &mut consumer] {
        let status = terminate(g.0.as_mut().context("running")?)?;
        g.0 = None;
        ensure!(status.success(), "exited with {status}");
    }
    Ok(())
}
