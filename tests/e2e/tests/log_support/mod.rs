//! Shared by the `log_*` tests: a signing key file, running `auditlog sequencer` next to
//! `auditlog consume` (ingest_support's World), and reading a database's logs back: heads,
//! leaves, tiles and checkpoints, to compare two runs or check the checkpoints' consistency.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use auditlog_tlog::merkle::{consistency_proof, verify_consistency, Hash};
use auditlog_tlog::tiles::width_at;
use auditlog_tlog::{Checkpoint, KeyKind, Note, Signer, Tile, TileId, TileSet, Verifier};
use clickhouse::Client;

use crate::ingest_support::World;

/// A fresh log signing key in a file of its own; `(path, verifier)`.
pub fn key_file(name: &str) -> Result<(PathBuf, Verifier)> {
    let signer = Signer::generate(name, KeyKind::Note)?;
    let dir = std::env::temp_dir().join(auditlog_testkit::unique_name("logkey"));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("log.key");
    std::fs::write(&path, format!("{}\n", signer.private_key()))?;
    Ok((path, signer.verifier()))
}

/// `auditlog sequencer` settings of a test: fast polls and checkpoints.
pub fn sequencer_env(key: &std::path::Path, listen: &str) -> Vec<(String, String)> {
    vec![
        (
            "AUDITLOG_SEQUENCER__SIGNING_KEY_FILE".into(),
            key.display().to_string(),
        ),
        ("AUDITLOG_SEQUENCER__LISTEN".into(), listen.into()),
        ("AUDITLOG_SEQUENCER__POLL_INTERVAL".into(), "50ms".into()),
        (
            "AUDITLOG_SEQUENCER__CHECKPOINT_INTERVAL".into(),
            "300ms".into(),
        ),
        (
            "AUDITLOG_SEQUENCER__ORIGIN_PREFIX".into(),
            "log.test".into(),
        ),
    ]
}

/// Starts `auditlog sequencer` for `world`, logging to a file named after the test.
pub fn spawn_sequencer(world: &World, tag: &str, env: &[(String, String)]) -> Result<Child> {
    let log = world.log_path(tag);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let child = world
        .command(&["sequencer"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .context("spawn auditlog sequencer")?;
    eprintln!("sequencer {tag}: PID {}, log {}", child.id(), log.display());
    Ok(child)
}

/// Leaves committed over every log (`sum(tree_size)` of the heads).
pub async fn committed(client: &Client) -> Result<u64> {
    Ok(client
        .query("SELECT toUInt64(sum(tree_size)) FROM log_heads FINAL")
        .fetch_one()
        .await?)
}

/// Waits until `n` leaves are committed; fails after `timeout`.
pub async fn wait_committed(client: &Client, n: u64, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let c = committed(client).await.unwrap_or(0);
        if c >= n {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("{c} leaves committed after {timeout:?}, expected {n}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every log's latest checkpoint covers its head.
pub async fn wait_checkpointed(client: &Client, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let behind: u64 = client
            .query(
                "SELECT count() FROM (SELECT workspace_id, tree_size FROM log_heads FINAL) AS h \
                 LEFT JOIN (SELECT workspace_id, max(tree_size) AS c FROM log_checkpoints \
                 GROUP BY workspace_id) AS k USING workspace_id WHERE k.c < h.tree_size",
            )
            .fetch_one()
            .await
            .unwrap_or(1);
        if behind == 0 {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("{behind} logs without a checkpoint of their head after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One log as stored: head, leaves and tiles (cut to the head's size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogState {
    pub workspace: String,
    pub size: u64,
    pub root: Hash,
    /// `(event_id, leaf_hash)` in leaf order.
    pub leaves: Vec<(String, Hash)>,
    /// Every tile of the tree at `size`, its hashes cut to `width_at(size)`.
    pub tiles: Vec<(u8, u64, Vec<u8>)>,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct HeadRow {
    workspace_id: String,
    tree_size: u64,
    root_hash: [u8; 32],
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct LeafRow {
    workspace_id: String,
    leaf_index: u64,
    event_id: String,
    leaf_hash: [u8; 32],
}

use auditlog_store::log::rows::TileRow;

/// Every stored tile (newest versions).
async fn all_tiles(client: &Client) -> Result<Vec<TileRow>> {
    Ok(client
        .query(
            "SELECT workspace_id, tile_level, tile_index, width, hashes, \
             toUnixTimestamp64Milli(written_at) AS written_at FROM log_tiles FINAL \
             ORDER BY workspace_id, tile_level, tile_index",
        )
        .fetch_all()
        .await?)
}

/// Every log of the database, sorted by workspace.
pub async fn logs(client: &Client) -> Result<Vec<LogState>> {
    let heads: Vec<HeadRow> = client
        .query(
            "SELECT workspace_id, tree_size, root_hash FROM log_heads FINAL ORDER BY workspace_id",
        )
        .fetch_all()
        .await?;
    let leaves: Vec<LeafRow> = client
        .query(
            "SELECT workspace_id, leaf_index, toString(event_id) AS event_id, leaf_hash \
             FROM log_leaves FINAL ORDER BY workspace_id, leaf_index",
        )
        .fetch_all()
        .await?;
    let tiles = all_tiles(client).await?;
    let mut out = Vec::new();
    for h in heads {
        let ls: Vec<(String, Hash)> = leaves
            .iter()
            .filter(|l| l.workspace_id == h.workspace_id && l.leaf_index < h.tree_size)
            .map(|l| (l.event_id.clone(), l.leaf_hash))
            .collect();
        ensure!(
            ls.len() as u64 == h.tree_size,
            "{}: {} leaves below its head of size {}",
            h.workspace_id,
            ls.len(),
            h.tree_size
        );
        let ts = tiles
            .iter()
            .filter(|t| t.workspace_id == h.workspace_id)
            .filter_map(|t| {
                let w = width_at(
                    TileId {
                        level: t.tile_level,
                        index: t.tile_index,
                    },
                    h.tree_size,
                ) as usize;
                (w > 0).then(|| (t.tile_level, t.tile_index, t.hashes[..w * 32].to_vec()))
            })
            .collect();
        out.push(LogState {
            workspace: h.workspace_id,
            size: h.tree_size,
            root: h.root_hash,
            leaves: ls,
            tiles: ts,
        });
    }
    Ok(out)
}

/// Every event id is a leaf exactly once (over all logs), and their number is `n`.
pub fn each_event_once(logs: &[LogState], n: usize) -> Result<()> {
    let mut ids: Vec<&str> = logs
        .iter()
        .flat_map(|l| l.leaves.iter().map(|(id, _)| id.as_str()))
        .collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    ensure!(
        ids.len() == total,
        "{} event ids are leaves more than once",
        total - ids.len()
    );
    ensure!(total == n, "{total} leaves, expected {n}");
    Ok(())
}

/// The checkpoints of every log in size order verify with `verifier`, name their log's
/// origin, and each is consistent with the one before (proofs from the stored tiles, checked
/// with the tlog verifier). Returns how many were checked.
pub async fn checkpoints_consistent(client: &Client, verifier: &Verifier) -> Result<usize> {
    let rows: Vec<(String, u64, String)> = client
        .query(
            "SELECT workspace_id, tree_size, note FROM log_checkpoints FINAL \
             ORDER BY workspace_id, tree_size",
        )
        .fetch_all()
        .await?;
    let tiles = all_tiles(client).await?;
    let mut checked = 0;
    let mut prev: Option<(String, u64, Hash)> = None;
    for (ws, size, note) in rows {
        let parsed = Note::parse(&note)?;
        ensure!(
            parsed.verified_by(verifier),
            "{ws}@{size}: bad log signature"
        );
        let cp = Checkpoint::parse(&parsed.text)?;
        ensure!(
            cp.origin == format!("log.test/{ws}"),
            "origin {}",
            cp.origin
        );
        ensure!(cp.size == size, "{ws}: note size {} != row {size}", cp.size);
        if let Some((pws, psize, proot)) = &prev {
            if *pws == ws {
                let set = TileSet::new(
                    tiles
                        .iter()
                        .filter(|t| t.workspace_id == ws)
                        .map(|t| {
                            Tile::from_bytes(
                                TileId {
                                    level: t.tile_level,
                                    index: t.tile_index,
                                },
                                &t.hashes,
                            )
                        })
                        .collect::<auditlog_tlog::Result<Vec<_>>>()?,
                );
                let proof = consistency_proof(*psize, size, &set)?;
                verify_consistency(*psize, size, &proof, proot, &cp.root)
                    .with_context(|| format!("{ws}: checkpoint {psize} -> {size}"))?;
                checked += 1;
            }
        }
        prev = Some((ws, size, cp.root));
    }
    Ok(checked)
}

/// The oracle: each workspace's root recomputed from the `events` table alone (its rows in
/// (partition, offset) order, the first copy of each event, `leaf_of`, an `Appender`), by
/// workspace. A log built by the sequencer must have exactly these roots.
pub async fn expected_roots(
    client: &Client,
) -> Result<std::collections::BTreeMap<String, (u64, Hash)>> {
    use auditlog_store::events::{StoredEvent, DETAIL_PROJECTION};
    let rows: Vec<StoredEvent> = client
        .query(&format!(
            "SELECT {DETAIL_PROJECTION} FROM events ORDER BY kafka_partition, kafka_offset"
        ))
        .fetch_all()
        .await?;
    let mut seen = std::collections::HashSet::new();
    let mut logs: std::collections::BTreeMap<String, auditlog_tlog::Appender> = Default::default();
    for r in &rows {
        if !seen.insert((r.workspace_id.clone(), r.id.clone())) {
            continue;
        }
        let leaf = auditlog_store::log::leaf_of(r)?;
        logs.entry(r.workspace_id.clone())
            .or_default()
            .append(leaf.leaf_hash());
    }
    Ok(logs
        .into_iter()
        .map(|(ws, a)| (ws, (a.size(), a.root())))
        .collect())
}

/// The database's heads equal [`expected_roots`].
pub async fn heads_match_the_events(client: &Client) -> Result<usize> {
    let expected = expected_roots(client).await?;
    let got: std::collections::BTreeMap<String, (u64, Hash)> = logs(client)
        .await?
        .into_iter()
        .map(|l| (l.workspace, (l.size, l.root)))
        .collect();
    ensure!(
        got == expected,
        "heads differ from the roots recomputed from events: {} logs vs {}",
        got.len(),
        expected.len()
    );
    Ok(got.len())
}
