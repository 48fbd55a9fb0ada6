//! Sending checkpoints to the witnesses of `sequencer.witnesses`: one task per witness, fed the
//! checkpoints of each signing round, so a witness that is down or slow never holds up
//! sequencing or signing. Per log, a witness is sent the newest checkpoint it has not cosigned,
//! with the consistency proof from the size it last cosigned (on startup: the largest size in
//! `log_cosignatures`; on `409 Conflict`: the witness's own size, retried once). A failed
//! checkpoint stays pending and is sent again next round; cosignatures go to
//! `log_cosignatures`, one insert per round.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use auditlog_producer::kafka_log::LogLimiter;
use auditlog_store::log::read::sequencer as read;
use auditlog_store::log::rows::CosignatureRow;
use auditlog_store::log::write;
use auditlog_tlog::{merkle, tiles, Hash, TileSet};
use auditlog_witness::client::{AddResult, WitnessClient};
use clickhouse::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::checkpoints::Signed;
use crate::config::SequencerConfig;
use crate::error::{Error, Result};
use crate::logs::tiles_of;
use crate::metrics as m;
use crate::step::now_ms;

/// The witness tasks.
#[derive(Debug, Default)]
pub struct Witnesses {
    links: Vec<(mpsc::UnboundedSender<Vec<Signed>>, JoinHandle<()>)>,
}

impl Witnesses {
    /// One task per configured witness; `cosigned` is what `log_cosignatures` holds.
    pub async fn start(cfg: &SequencerConfig, client: &Client) -> Result<Self> {
        if cfg.witnesses.is_empty() {
            return Ok(Self::default());
        }
        let cosigned = read::cosigned_sizes(client).await?;
        let mut links = Vec::new();
        for (i, target) in cfg.witnesses.iter().enumerate() {
            let http = WitnessClient::new(&target.url, &target.verifier_key, cfg.witness_timeout)
                .map_err(|e| {
                Error::Config(auditlog_settings::BadSetting::new(
                    format!("sequencer.witnesses[{i}].verifier_key"),
                    e.to_string(),
                ))
            })?;
            let name = http.verifier().name().to_owned();
            let sizes = cosigned
                .iter()
                .filter(|(_, w, _)| *w == name)
                .map(|(ws, _, size)| (ws.clone(), *size))
                .collect();
            let (tx, rx) = mpsc::unbounded_channel();
            let task = Task {
                index: i.to_string(),
                http,
                client: client.clone(),
                sizes,
                pending: BTreeMap::new(),
                unsaved: Vec::new(),
                retry: cfg.checkpoint_interval.max(Duration::from_secs(1)),
                limiter: LogLimiter::new(Duration::from_secs(30)),
            };
            links.push((tx, tokio::spawn(task.run(rx))));
        }
        Ok(Self { links })
    }

    /// Hands a round's checkpoints to every witness.
    pub fn send(&self, signed: &[Signed]) {
        if signed.is_empty() {
            return;
        }
        for (tx, _) in &self.links {
            let _ = tx.send(signed.to_vec());
        }
    }

    /// Lets each task send what it has (at most `deadline`), then stops them.
    pub async fn finish(self, deadline: Duration) {
        let mut handles = Vec::new();
        for (tx, handle) in self.links {
            drop(tx);
            handles.push(handle);
        }
        for mut h in handles {
            if tokio::time::timeout(deadline, &mut h).await.is_err() {
                h.abort();
            }
        }
    }
}

/// One witness's task.
struct Task {
    /// Its position in `sequencer.witnesses` (the metrics label).
    index: String,
    http: WitnessClient,
    client: Client,
    /// Per log, the size the witness last cosigned.
    sizes: HashMap<String, u64>,
    /// Per log, the newest checkpoint not cosigned yet: (size, note).
    pending: BTreeMap<String, (u64, String)>,
    /// Cosignatures whose insert failed, inserted with the next round's.
    unsaved: Vec<CosignatureRow>,
    retry: Duration,
    limiter: LogLimiter,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Vec<Signed>>) {
        loop {
            let open = tokio::select! {
                got = rx.recv() => match got {
                    Some(batch) => { self.add(batch); true }
                    None => false,
                },
                () = tokio::time::sleep(self.retry), if !self.pending.is_empty() => true,
            };
            while let Ok(batch) = rx.try_recv() {
                self.add(batch);
            }
            self.round().await;
            if !open {
                return;
            }
        }
    }

    fn add(&mut self, batch: Vec<Signed>) {
        for s in batch {
            self.pending.insert(s.workspace, (s.size, s.note));
        }
    }

    fn warn(&self, what: &str, error: &dyn std::fmt::Display) {
        let key = format!("{what}: {error}");
        if let Some(held) = self.limiter.admit(&key, Instant::now()) {
            tracing::warn!(witness = %self.http.url(), repeated = held, error = %error, "{what}");
        }
    }

    /// Sends every pending checkpoint once.
    async fn round(&mut self) {
        let todo: Vec<(String, u64, String, u64)> = self
            .pending
            .iter()
            .map(|(ws, (size, note))| {
                let old = self.sizes.get(ws).copied().unwrap_or(0);
                (ws.clone(), *size, note.clone(), old)
            })
            .collect();
        let wanted: Vec<(String, u64, u64)> = todo
            .iter()
            .filter(|t| t.3 < t.1)
            .map(|t| (t.0.clone(), t.3, t.1))
            .collect();
        let mut proofs = match proofs(&self.client, &wanted).await {
            Ok(p) => p,
            Err(e) => {
                self.warn("cannot read the tiles for consistency proofs", &e);
                return;
            }
        };
        let mut rows = std::mem::take(&mut self.unsaved);
        for (ws, size, note, old) in todo {
            if old >= size {
                self.pending.remove(&ws);
                continue;
            }
            let Some(proof) = proofs.remove(&ws) else {
                continue;
            };
            match self.send(&ws, size, &note, old, proof).await {
                Ok(Some(row)) => {
                    metrics::counter!(m::COSIGNATURES, "witness" => self.index.clone())
                        .increment(1);
                    rows.push(row);
                }
                Ok(None) => {}
                Err(e) => {
                    metrics::counter!(m::WITNESS_FAILURES, "witness" => self.index.clone())
                        .increment(1);
                    self.warn(
                        "witness did not cosign a checkpoint (retried next round)",
                        &e,
                    );
                }
            }
        }
        if let Err(e) = write::cosignatures(&self.client, &rows).await {
            self.warn("cannot store cosignatures (retried next round)", &e);
            self.unsaved = rows;
        }
    }

    /// One checkpoint to the witness: its cosignature row, `None` when the witness already
    /// has that size or more.
    async fn send(
        &mut self,
        ws: &str,
        size: u64,
        note: &str,
        old: u64,
        proof: Vec<Hash>,
    ) -> std::result::Result<Option<CosignatureRow>, String> {
        let mut answer = self
            .http
            .add_checkpoint(old, &proof, note)
            .await
            .map_err(|e| e.to_string())?;
        if let AddResult::Conflict { witness_size } = answer {
            if witness_size >= size {
                // It has this checkpoint (or a later one: logged, as it should not be).
                if witness_size > size {
                    self.warn(
                        "witness holds a larger tree size than the log",
                        &format!("{ws}: {witness_size} > {size}"),
                    );
                }
                self.sizes.insert(ws.to_owned(), witness_size);
                self.pending.remove(ws);
                return Ok(None);
            }
            let again = proofs(&self.client, &[(ws.to_owned(), witness_size, size)])
                .await
                .map_err(|e| e.to_string())?
                .remove(ws)
                .unwrap_or_default();
            answer = self
                .http
                .add_checkpoint(witness_size, &again, note)
                .await
                .map_err(|e| e.to_string())?;
        }
        match answer {
            AddResult::Cosigned(sig) => {
                self.sizes.insert(ws.to_owned(), size);
                self.pending.remove(ws);
                Ok(Some(CosignatureRow {
                    workspace_id: ws.to_owned(),
                    tree_size: size,
                    witness: self.http.verifier().name().to_owned(),
                    signature_line: sig.to_line(),
                    cosigned_at: now_ms(),
                }))
            }
            AddResult::Conflict { witness_size } => Err(format!(
                "409 again for {ws} (witness size {witness_size}, log size {size})"
            )),
        }
    }
}

/// Consistency proofs `old -> size` of each `(workspace, old, size)`, from the stored tiles
/// (one read for all of them).
async fn proofs(
    client: &Client,
    wanted: &[(String, u64, u64)],
) -> Result<HashMap<String, Vec<Hash>>> {
    let mut ids = Vec::new();
    for (ws, old, size) in wanted {
        if *old == 0 {
            continue;
        }
        let nodes = merkle::consistency_nodes(*old, *size)
            .map_err(|e| Error::tlog("consistency proof nodes", e))?;
        ids.extend(
            tiles::tiles_for(&nodes, *size)
                .into_iter()
                .map(|t| (ws.clone(), t.level, t.index)),
        );
    }
    let mut by_ws: HashMap<String, Vec<_>> = HashMap::new();
    for row in read::tiles(client, &ids).await? {
        by_ws.entry(row.workspace_id.clone()).or_default().push(row);
    }
    let mut out = HashMap::new();
    for (ws, old, size) in wanted {
        if *old == 0 {
            out.insert(ws.clone(), Vec::new());
            continue;
        }
        let set = TileSet::new(tiles_of(by_ws.remove(ws).unwrap_or_default())?);
        let proof = merkle::consistency_proof(*old, *size, &set)
            .map_err(|e| Error::tlog(format!("consistency proof of {ws}"), e))?;
        out.insert(ws.clone(), proof);
    }
    Ok(out)
}
