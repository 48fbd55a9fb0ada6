//! A sequencer that crashed after writing a step's leaves and tiles but before its heads left
//! rows past the heads; here they are forged with OTHER content (random events, tiles whose
//! committed prefix is right and whose new part is garbage), as a crash of a step that read a
//! different page would leave. The restarted sequencer re-sequences past the heads: the forged
//! rows lose (older versions), every event is a leaf once, and every head equals the root
//! recomputed from the `events` table alone (the oracle).

mod ingest_support;
mod log_support;

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use auditlog_store::log::rows::{LeafRow, TileRow};
use auditlog_store::log::write;
use auditlog_tlog::Appender;
use ingest_support::{messages, synth, terminate, Guard, World};
use log_support::{
    each_event_once, heads_match_the_events, key_file, logs, sequencer_env, spawn_sequencer,
    wait_committed,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_past_the_heads_are_re_sequenced() -> Result<()> {
    let w = World::new("logcrash", 2).await?;
    let (key, _) = key_file("log.test")?;
    let env = sequencer_env(&key, "");
    let all = messages(&synth(800, 9, 3));
    w.produce(&all[..400]).await?;
    let mut consumer = Guard(Some(w.spawn_consumer("c")?));
    let mut sequencer = Guard(Some(spawn_sequencer(&w, "seq1", &env)?));
    let client = w.client();
    wait_committed(&client, 400, Duration::from_secs(60)).await?;
    let status = terminate(sequencer.0.as_mut().context("running")?)?;
    ensure!(status.success(), "sequencer exited with {status}");

    // The forged remains of a crashed step: 40 leaves past each head, and its edge tiles
    // widened with garbage, all newer than anything written so far.
    let stamp = chrono::Utc::now().timestamp_millis() + 1;
    let (mut leaves, mut tiles) = (Vec::new(), Vec::new());
    let stored: Vec<TileRow> = client
        .query(
            "SELECT workspace_id, tile_level, tile_index, width, hashes, \
             toUnixTimestamp64Milli(written_at) AS written_at FROM log_tiles FINAL",
        )
        .fetch_all()
        .await?;
    for log in logs(&client).await? {
        for i in 0..40u64 {
            leaves.push(LeafRow {
                workspace_id: log.workspace.clone(),
                leaf_index: log.size + i,
                event_id: uuid::Uuid::new_v4(),
                time: stamp,
                content_sha256: [7; 32],
                leaf_hash: [9; 32],
                kafka_partition: 0,
                kafka_offset: 0,
                sequenced_at: stamp,
            });
        }
        for id in Appender::edge_tiles(log.size) {
            let mut t = stored
                .iter()
                .find(|t| {
                    t.workspace_id == log.workspace
                        && t.tile_level == id.level
                        && t.tile_index == id.index
                })
                .cloned()
                .with_context(|| format!("{}: edge tile {id:?}", log.workspace))?;
            let room = 256 - u64::from(t.width);
            let extra = room.min(5);
            t.hashes
                .extend(std::iter::repeat_n(0xAB, extra as usize * 32));
            t.width += extra as u16;
            t.written_at = stamp;
            tiles.push(t);
        }
    }
    write::leaves(&client, &leaves, "forged-leaves").await?;
    write::tiles(&client, &tiles, "forged-tiles").await?;

    w.produce(&all[400..]).await?;
    sequencer = Guard(Some(spawn_sequencer(&w, "seq2", &env)?));
    w.wait_rows(800, Duration::from_secs(60)).await?;
    wait_committed(&client, 800, Duration::from_secs(60)).await?;
    let state = logs(&client).await?;
    each_event_once(&state, 800)?;
    let forged: u64 = client
        .query(
            "SELECT count() FROM (SELECT workspace_id, leaf_index, argMax(leaf_hash, sequenced_at) AS h \
             FROM log_leaves GROUP BY workspace_id, leaf_index) WHERE h = repeat(char(9), 32)",
        )
        .fetch_one()
        .await?;
    ensure!(forged == 0, "{forged} forged leaves survived");
    let n = heads_match_the_events(&client).await?;
    eprintln!("{n} logs equal the roots recomputed from the events table");
    for g in [&mut sequencer, &mut consumer] {
        let status = terminate(g.0.as_mut().context("running")?)?;
        g.0 = None;
        ensure!(status.success(), "exited with {status}");
    }
    Ok(())
}
