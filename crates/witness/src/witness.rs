//! The witness's decision (C2SP tlog-witness `add-checkpoint`), independent of HTTP: the checks
//! in the spec's order, then the record appended and fsynced, then the cosignature. Adds of one
//! origin are serialized (a mutex per origin held from the size check to the update), so two
//! concurrent adds cannot both be checked against the same old state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use auditlog_settings::BadSetting;
use auditlog_tlog::{
    cosignature, merkle, Checkpoint, Hash, KeyKind, Note, Signature, Signer, Verifier,
};
use base64::Engine as _;

use crate::config::WitnessConfig;
use crate::request;
use crate::state::{Record, StateError, StateFile};

/// What an `add-checkpoint` came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// 200: recorded and cosigned.
    Cosigned(Signature),
    /// 400: the body, the note or the checkpoint is malformed, or `old` is above the size.
    Malformed(String),
    /// 404: no `[witness] logs` entry matches the origin.
    UnknownOrigin(String),
    /// 403: no signature of a trusted key for the origin verifies.
    Forbidden(String),
    /// 409 with `text/x.tlog.size`: `old` is not the witness's size for the origin.
    SizeConflict(u64),
    /// 409: same size as the witness's, another root hash (a fork).
    RootConflict(String),
    /// 422: the consistency proof does not verify.
    BadProof(String),
}

impl AddOutcome {
    /// A bounded label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            AddOutcome::Cosigned(_) => "cosigned",
            AddOutcome::Malformed(_) => "malformed",
            AddOutcome::UnknownOrigin(_) => "unknown_origin",
            AddOutcome::Forbidden(_) => "forbidden",
            AddOutcome::SizeConflict(_) => "size_conflict",
            AddOutcome::RootConflict(_) => "root_conflict",
            AddOutcome::BadProof(_) => "bad_proof",
        }
    }
}

/// Why the witness cannot start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A setting (the key file, a log's key...), named.
    #[error(transparent)]
    Setting(#[from] BadSetting),
    /// The state file.
    #[error("witness.state_dir: {0}")]
    State(#[from] StateError),
}

/// Why an `add-checkpoint` could not be answered (500): nothing was cosigned, the state is
/// unchanged.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The record could not be appended and synced.
    #[error("persisting the checkpoint: {0}")]
    Persist(#[from] StateError),
    /// The blocking append task failed.
    #[error("persisting the checkpoint: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Cosigning failed (a key of the wrong kind; checked at startup).
    #[error("cosigning: {0}")]
    Cosign(#[from] auditlog_tlog::Error),
}

/// The newest cosigned checkpoint of an origin.
#[derive(Debug, Clone)]
struct Latest {
    size: u64,
    root: Hash,
    record: Record,
}

type Slot = Arc<tokio::sync::Mutex<Option<Latest>>>;

/// A running witness: its key, the logs it trusts, its file and state.
#[derive(Debug)]
pub struct Witness {
    signer: Signer,
    logs: Vec<(String, Verifier)>,
    file: Arc<Mutex<StateFile>>,
    origins: Mutex<HashMap<String, Slot>>,
    /// Origins whose slot holds a checkpoint (a slot is made before its first add succeeds).
    cosigned_origins: AtomicUsize,
}

impl Witness {
    /// Validates `cfg`, reads the key file and rebuilds the state from the file.
    pub fn open(cfg: &WitnessConfig) -> Result<Witness, OpenError> {
        cfg.validate()?;
        let field = "witness.key_file";
        let text = std::fs::read_to_string(&cfg.key_file)
            .map_err(|e| BadSetting::new(field, format!("{}: {e}", cfg.key_file)))?;
        let signer = Signer::from_private_key(text.trim())
            .map_err(|e| BadSetting::new(field, format!("{}: {e}", cfg.key_file)))?;
        if signer.kind() != KeyKind::Cosignature {
            return Err(BadSetting::new(
                field,
                format!(
                    "{} is a log's note key; a witness cosigns with a key from \
                     `auditlog keygen --witness`",
                    cfg.key_file
                ),
            )
            .into());
        }
        Self::from_parts(
            signer,
            cfg.log_verifiers()?,
            std::path::Path::new(&cfg.state_dir),
        )
    }

    /// A witness with `signer` (a cosignature key) trusting `logs` (origin prefix, log key),
    /// its state in `state_dir`.
    pub fn from_parts(
        signer: Signer,
        logs: Vec<(String, Verifier)>,
        state_dir: &std::path::Path,
    ) -> Result<Witness, OpenError> {
        let (file, records) = StateFile::open(state_dir)?;
        let mut origins = HashMap::new();
        for (origin, record) in records {
            let root = decode_root(&record.root).ok_or_else(|| StateError::Corrupt {
                path: file.path().to_path_buf(),
                line: 0,
                why: format!(
                    "origin {origin}: root {:?} is not a base64 hash",
                    record.root
                ),
            })?;
            let latest = Latest {
                size: record.size,
                root,
                record,
            };
            origins.insert(origin, Arc::new(tokio::sync::Mutex::new(Some(latest))));
        }
        tracing::info!(
            origins = origins.len(),
            file = %file.path().display(),
            key = %signer.verifier(),
            "witness state loaded"
        );
        Ok(Witness {
            signer,
            logs,
            file: Arc::new(Mutex::new(file)),
            cosigned_origins: AtomicUsize::new(origins.len()),
            origins: Mutex::new(origins),
        })
    }

    /// The witness's verifier key.
    pub fn verifier(&self) -> Verifier {
        self.signer.verifier()
    }

    /// Origins with a cosigned checkpoint.
    pub fn origin_count(&self) -> usize {
        self.cosigned_origins.load(Ordering::Relaxed)
    }

    fn slot(&self, origin: &str) -> Slot {
        lock(&self.origins)
            .entry(origin.to_owned())
            .or_default()
            .clone()
    }

    fn existing_slot(&self, origin: &str) -> Option<Slot> {
        lock(&self.origins).get(origin).cloned()
    }

    /// Handles an `add-checkpoint` body at `now` (unix seconds). `Err` only when the record
    /// could not be persisted (then nothing was cosigned and the state is unchanged).
    pub async fn add(&self, body: &str, now: u64) -> Result<AddOutcome, AddError> {
        let req = match request::parse(body) {
            Ok(r) => r,
            Err(why) => return Ok(AddOutcome::Malformed(why)),
        };
        let note = match Note::parse(&req.note) {
            Ok(n) => n,
            Err(e) => return Ok(AddOutcome::Malformed(e.to_string())),
        };
        let cp = match Checkpoint::parse(&note.text) {
            Ok(c) => c,
            Err(e) => return Ok(AddOutcome::Malformed(e.to_string())),
        };
        let trusted: Vec<&Verifier> = self
            .logs
            .iter()
            .filter(|(prefix, _)| cp.origin.starts_with(prefix.as_str()))
            .map(|(_, v)| v)
            .collect();
        if trusted.is_empty() {
            return Ok(AddOutcome::UnknownOrigin(format!(
                "origin {:?} is not a log this witness witnesses",
                cp.origin
            )));
        }
        // Signatures of unknown keys are ignored (and not kept).
        let signatures: Vec<Signature> = note
            .signatures
            .iter()
            .filter(|s| trusted.iter().any(|v| v.verify_note(&note.text, s)))
            .cloned()
            .collect();
        if signatures.is_empty() {
            return Ok(AddOutcome::Forbidden(format!(
                "no valid signature of the key of {:?}",
                cp.origin
            )));
        }
        if req.old_size > cp.size {
            return Ok(AddOutcome::Malformed(format!(
                "old size {} is above the checkpoint's size {}",
                req.old_size, cp.size
            )));
        }

        let slot = self.slot(&cp.origin);
        let mut latest = slot.lock().await;
        let (size, root) = latest
            .as_ref()
            .map_or((0, None), |l| (l.size, Some(l.root)));
        if req.old_size != size {
            return Ok(AddOutcome::SizeConflict(size));
        }
        match root {
            Some(root) if size == cp.size => {
                if root != cp.root {
                    return Ok(AddOutcome::RootConflict(format!(
                        "size {size}: the witness cosigned another root hash (a fork)"
                    )));
                }
                if !req.proof.is_empty() {
                    return Ok(AddOutcome::BadProof(
                        "a proof between equal sizes must be empty".into(),
                    ));
                }
            }
            Some(root) => {
                if let Err(e) =
                    merkle::verify_consistency(size, cp.size, &req.proof, &root, &cp.root)
                {
                    return Ok(AddOutcome::BadProof(format!(
                        "consistency {size} -> {}: {e}",
                        cp.size
                    )));
                }
            }
            None if !req.proof.is_empty() => {
                return Ok(AddOutcome::BadProof(
                    "the proof from size 0 must be empty".into(),
                ));
            }
            None => {}
        }

        let cosig = cosignature::cosign(&self.signer, &note.text, now)?;
        let kept = Note {
            text: note.text.clone(),
            signatures,
        };
        let record = Record {
            origin: cp.origin.clone(),
            size: cp.size,
            root: base64::engine::general_purpose::STANDARD.encode(cp.root),
            note: kept.to_string(),
            cosignature: cosig.to_line(),
            time: now,
        };
        let file = self.file.clone();
        let to_write = record.clone();
        tokio::task::spawn_blocking(move || lock(&file).append(&to_write)).await??;
        if latest.is_none() {
            self.cosigned_origins.fetch_add(1, Ordering::Relaxed);
        }
        *latest = Some(Latest {
            size: cp.size,
            root: cp.root,
            record,
        });
        Ok(AddOutcome::Cosigned(cosig))
    }

    /// The newest cosigned checkpoint of `origin` as a signed note: the log's signature
    /// line(s) and the witness's cosignature line.
    pub async fn latest_note(&self, origin: &str) -> Option<String> {
        let slot = self.existing_slot(origin)?;
        let latest = slot.lock().await;
        let r = &latest.as_ref()?.record;
        Some(format!("{}{}\n", r.note, r.cosignature))
    }

    /// The file's path and the length of its complete lines now.
    pub fn log_file(&self) -> (std::path::PathBuf, u64) {
        let f = lock(&self.file);
        (f.path().to_path_buf(), f.len())
    }
}

fn decode_root(b64: &str) -> Option<Hash> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()?
        .try_into()
        .ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
