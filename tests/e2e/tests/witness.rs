//! The `auditlog keygen` and `auditlog witness` binaries: two keys made with keygen (a log key,
//! a witness key), the witness spawned with them, the client (the sequencer's) against it:
//! cosigned, conflict, refused; its state across a SIGTERM and a restart; startup refused
//! naming the setting. No stack needed.

mod ingest_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use auditlog_testkit::auditlog_bin;
use auditlog_tlog::{merkle, Appender, Checkpoint, Note, Signer, TileSet, Verifier};
use auditlog_witness::{AddResult, WitnessClient, WitnessError};
use ingest_support::{http_get, terminate, Guard};

/// `auditlog keygen ARGS`: (the verifier key it printed, stderr).
fn keygen(args: &[&str]) -> Result<(String, String)> {
    let out = Command::new(auditlog_bin())
        .arg("keygen")
        .args(args)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.success(), "keygen {args:?} failed: {stderr}");
    Ok((String::from_utf8(out.stdout)?.trim().to_owned(), stderr))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn write_config(
    path: &Path,
    listen: &str,
    key_file: &Path,
    state: &Path,
    log_key: &str,
) -> Result<()> {
    std::fs::write(
        path,
        format!(
            "[witness]\nlisten = \"{listen}\"\nkey_file = \"{}\"\nstate_dir = \"{}\"\n\n\
             [[witness.logs]]\norigin_prefix = \"auditlog.e2e/\"\nverifier_key = \"{log_key}\"\n",
            key_file.display(),
            state.display()
        ),
    )?;
    Ok(())
}

/// `auditlog witness` with `config`, once `/health/ready` answers.
async fn spawn_witness(config: &Path, listen: &str) -> Result<Guard> {
    let child = Command::new(auditlog_bin())
        .arg("--config")
        .arg(config)
        .arg("witness")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
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

/// A log of `size` leaves: (signed checkpoint, tiles for proofs).
fn log_at(signer: &Signer, size: u64, tag: &str) -> (String, TileSet) {
    let mut a = Appender::new();
    for i in 0..size {
        a.append(merkle::leaf_hash(format!("{tag}{i}").as_bytes()));
    }
    let tiles = TileSet::new(a.take_changed());
    let text = Checkpoint::new("auditlog.e2e/ws_1", size, a.root(), 1_764_633_600_000).to_text();
    let note = Note {
        signatures: vec![signer.sign_note(&text).unwrap()],
        text,
    };
    (note.to_string(), tiles)
}

#[tokio::test]
async fn keygen_then_witness_cosigns_through_the_client() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log_file = dir.path().join("log.key");
    let witness_file = dir.path().join("witness.key");

    // Two keys; the private ones 0600, the verifier keys on stdout.
    let (log_key, said) = keygen(&[
        "--name",
        "auditlog.e2e",
        "--out",
        log_file.to_str().unwrap(),
    ])?;
    ensure!(said.contains("log.key"), "{said}");
    let (witness_key, _) = keygen(&[
        "--witness",
        "--name",
        "witness.e2e",
        "--out",
        witness_file.to_str().unwrap(),
    ])?;
    use std::os::unix::fs::PermissionsExt as _;
    for f in [&log_file, &witness_file] {
        let mode = std::fs::metadata(f)?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "{} has mode {mode:o}", f.display());
    }
    let log_signer = Signer::from_private_key(std::fs::read_to_string(&log_file)?.trim())?;
    ensure!(log_signer.verifier().to_string() == log_key);
    ensure!(Verifier::parse(&witness_key)?.name() == "witness.e2e");
    // Never over an existing file.
    let before = std::fs::read(&log_file)?;
    let again = Command::new(auditlog_bin())
        .args(["keygen", "--name", "other", "--out"])
        .arg(&log_file)
        .output()?;
    ensure!(!again.status.success());
    ensure!(
        std::fs::read(&log_file)? == before,
        "keygen overwrote the key file"
    );

    let listen = format!("127.0.0.1:{}", free_port()?);
    let config = dir.path().join("witness.toml");
    let state = dir.path().join("state");
    write_config(&config, &listen, &witness_file, &state, &log_key)?;
    let mut witness = spawn_witness(&config, &listen).await?;

    let client = WitnessClient::new(
        &format!("http://{listen}"),
        &witness_key,
        Duration::from_secs(5),
    )?;
    let (first, _) = log_at(&log_signer, 10, "a");
    ensure!(matches!(
        client.add_checkpoint(0, &[], &first).await?,
        AddResult::Cosigned(_)
    ));
    let (second, tiles) = log_at(&log_signer, 300, "a");
    let proof = merkle::consistency_proof(10, 300, &tiles)?;
    ensure!(matches!(
        client.add_checkpoint(10, &proof, &second).await?,
        AddResult::Cosigned(_)
    ));
    ensure!(
        client.add_checkpoint(10, &proof, &second).await?
            == AddResult::Conflict { witness_size: 300 }
    );
    let (fork, fork_tiles) = log_at(&log_signer, 400, "b");
    let fork_proof = merkle::consistency_proof(300, 400, &fork_tiles)?;
    match client.add_checkpoint(300, &fork_proof, &fork).await {
        Err(WitnessError::Refused { status: 422, .. }) => {}
        other => bail!("a fork was answered {other:?}"),
    }
    let latest = client
        .latest("auditlog.e2e/ws_1")
        .await?
        .context("no latest")?;
    ensure!(latest.starts_with(&Note::parse(&second)?.text), "{latest}");
    let (_, metrics) = http_get(&listen, "/metrics").await?;
    ensure!(
        metrics.contains("auditlog_witness_add_checkpoint_total{result=\"cosigned\"} 2"),
        "{metrics}"
    );

    // SIGTERM: exits 0; restarted, the state is the file's.
    let status = terminate(witness.0.as_mut().context("witness")?)?;
    ensure!(status.success(), "witness exited with {status} on SIGTERM");
    witness.0 = None;
    let lines = std::fs::read_to_string(state.join("checkpoints.ndjson"))?;
    ensure!(lines.lines().count() == 2, "{lines}");
    let _witness = spawn_witness(&config, &listen).await?;
    ensure!(
        client.add_checkpoint(0, &[], &first).await? == AddResult::Conflict { witness_size: 300 }
    );

    // Startup refused, naming the setting: a log key as the witness key.
    let bad = dir.path().join("bad.toml");
    write_config(
        &bad,
        &format!("127.0.0.1:{}", free_port()?),
        &log_file,
        &state,
        &log_key,
    )?;
    let out = Command::new(auditlog_bin())
        .arg("--config")
        .arg(&bad)
        .arg("witness")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && stderr.contains("witness.key_file"),
        "{stderr}"
    );
    Ok(())
}
