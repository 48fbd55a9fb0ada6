//! Signing: every `sequencer.checkpoint_interval`, a C2SP checkpoint for each log whose
//! committed head grew since its last checkpoint (origin `<origin_prefix>/<workspace_id>`,
//! signed by the log key), all of a round in one insert into `log_checkpoints`. The key is
//! announced in `log_keys` at startup (every key ever used stays there: old checkpoints name
//! their key and stay verifiable after a rotation).

use std::collections::HashMap;

use auditlog_store::log::read::sequencer as read;
use auditlog_store::log::rows::{CheckpointRow, KeyRow};
use auditlog_store::log::write;
use auditlog_tlog::{Checkpoint, Note, Signer};
use clickhouse::Client;

use crate::error::{Error, Result};
use crate::metrics as m;
use crate::step::{now_ms, Sequencer};

/// A checkpoint just signed and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The workspace whose log it is.
    pub workspace: String,
    /// Its tree size.
    pub size: u64,
    /// The signed note.
    pub note: String,
}

/// The signer and, per log, the size of its last checkpoint.
#[derive(Debug)]
pub struct Signing {
    signer: Signer,
    origin_prefix: String,
    checkpointed: HashMap<String, u64>,
}

/// Inserts or refreshes the key's row in `log_keys` (keeping when it was first used).
pub async fn announce(client: &Client, signer: &Signer) -> Result<()> {
    let verifier = signer.verifier().to_string();
    let now = now_ms();
    let first = read::key_first_used(client, &verifier)
        .await?
        .unwrap_or(now);
    write::key(
        client,
        &KeyRow {
            verifier_key: verifier,
            key_name: signer.name().to_owned(),
            first_used: first,
            last_used: now,
        },
    )
    .await?;
    Ok(())
}

impl Signing {
    /// The signer (call [`Signing::load`] before a round).
    pub fn new(signer: Signer, origin_prefix: &str) -> Self {
        Self {
            signer,
            origin_prefix: origin_prefix.to_owned(),
            checkpointed: HashMap::new(),
        }
    }

    /// The signer.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Reads the sizes of the stored checkpoints.
    pub async fn load(&mut self, client: &Client) -> Result<()> {
        self.checkpointed = read::checkpointed_sizes(client)
            .await?
            .into_iter()
            .collect();
        Ok(())
    }

    /// The signing key's name.
    pub fn key_name(&self) -> &str {
        self.signer.name()
    }

    /// The largest checkpointed size of each log.
    pub fn checkpointed(&self) -> &HashMap<String, u64> {
        &self.checkpointed
    }

    /// One round: signs and stores a checkpoint of every log that grew; returns them.
    pub async fn round(&mut self, client: &Client, seq: &mut Sequencer) -> Result<Vec<Signed>> {
        let now = now_ms();
        let mut rows = Vec::new();
        for (ws, head) in &seq.logs.heads {
            if head.size <= self.checkpointed.get(ws).copied().unwrap_or(0) {
                continue;
            }
            let origin = format!("{}/{ws}", self.origin_prefix);
            let text = Checkpoint::new(&origin, head.size, head.root, now).to_text();
            let sig = self
                .signer
                .sign_note(&text)
                .map_err(|e| Error::tlog("sign a checkpoint", e))?;
            let note = Note {
                text,
                signatures: vec![sig],
            }
            .to_string();
            rows.push(CheckpointRow {
                workspace_id: ws.clone(),
                tree_size: head.size,
                root_hash: head.root,
                signed_at: now,
                key_name: self.signer.name().to_owned(),
                note,
            });
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        write::checkpoints(client, &rows).await?;
        metrics::counter!(m::CHECKPOINTS).increment(rows.len() as u64);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            self.checkpointed
                .insert(row.workspace_id.clone(), row.tree_size);
            if let Some(since) = seq.uncovered_since.remove(&row.workspace_id) {
                metrics::histogram!(m::CHECKPOINT_LAG).record((now - since).max(0) as f64 / 1000.0);
            }
            out.push(Signed {
                workspace: row.workspace_id,
                size: row.tree_size,
                note: row.note,
            });
        }
        Ok(out)
    }
}
