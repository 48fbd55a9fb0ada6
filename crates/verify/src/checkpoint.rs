//! Signed checkpoints: a note verified against the pinned log keys (several for a rotation),
//! its parsed body, and the witness cosignatures on it.

use std::path::Path;

use auditlog_tlog::wire::CheckpointBody;
use auditlog_tlog::{cosignature, Checkpoint, KeyKind, Note, Verifier};

use crate::report::{Failure, FailureKind};
use crate::Error;

/// The log keys a customer pinned (verifier key texts given with `--key`).
#[derive(Debug, Clone)]
pub struct Keys {
    log: Vec<Verifier>,
    witnesses: Vec<Verifier>,
}

impl Keys {
    /// From verifier key texts: `log` must be note keys, `witnesses` cosignature keys.
    pub fn parse(log: &[String], witnesses: &[String]) -> Result<Keys, Error> {
        let parse = |text: &String, kind: KeyKind, what: &str| {
            let v = Verifier::parse(text.trim()).map_err(|e| Error::Input {
                what: format!("{what} {text:?}"),
                why: e.to_string(),
            })?;
            if v.kind() != kind {
                return Err(Error::Input {
                    what: format!("{what} {text:?}"),
                    why: format!("a {kind:?} key is needed, this is a {:?} key", v.kind()),
                });
            }
            Ok(v)
        };
        let log = log
            .iter()
            .map(|t| parse(t, KeyKind::Note, "log key"))
            .collect::<Result<Vec<_>, _>>()?;
        if log.is_empty() {
            return Err(Error::Input {
                what: "log keys".into(),
                why: "at least one --key is needed".into(),
            });
        }
        let witnesses = witnesses
            .iter()
            .map(|t| parse(t, KeyKind::Cosignature, "witness key"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Keys { log, witnesses })
    }
    /// The witness keys.
    pub fn witnesses(&self) -> &[Verifier] {
        &self.witnesses
    }
}

/// A checkpoint note and what it says. `signed_by` is `None` when no pinned key signed it
/// (the caller reports [`FailureKind::BadSignature`] and may still check the rest).
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    /// The note as given.
    pub note_text: String,
    /// The parsed note.
    pub note: Note,
    /// Its body.
    pub checkpoint: Checkpoint,
    /// The name of the pinned key that signed it.
    pub signed_by: Option<String>,
}

impl SignedCheckpoint {
    /// Parse `note_text` and check its signature against `keys`. A malformed note is a
    /// [`FailureKind::Malformed`] failure.
    pub fn parse(note_text: &str, keys: &Keys) -> Result<SignedCheckpoint, Failure> {
        let note = Note::parse(note_text)
            .map_err(|e| Failure::new(FailureKind::Malformed, format!("checkpoint note: {e}")))?;
        let checkpoint = Checkpoint::parse(&note.text)
            .map_err(|e| Failure::new(FailureKind::Malformed, format!("checkpoint: {e}")))?;
        let signed_by = keys
            .log
            .iter()
            .find(|v| note.verified_by(v))
            .map(|v| v.name().to_owned());
        Ok(SignedCheckpoint {
            note_text: note_text.to_owned(),
            note,
            checkpoint,
            signed_by,
        })
    }

    /// Like [`SignedCheckpoint::parse`], but a checkpoint no pinned key signed is a
    /// [`FailureKind::BadSignature`] failure. `what` names it in the message.
    pub fn verified(note_text: &str, keys: &Keys, what: &str) -> Result<SignedCheckpoint, Failure> {
        let cp = SignedCheckpoint::parse(note_text, keys)
            .map_err(|f| Failure::new(f.kind, format!("{what}: {}", f.message)))?;
        if cp.signed_by.is_none() {
            return Err(Failure::new(
                FailureKind::BadSignature,
                cp.unsigned_message(what),
            ));
        }
        Ok(cp)
    }

    /// The message of a [`FailureKind::BadSignature`] failure.
    pub fn unsigned_message(&self, what: &str) -> String {
        let names: Vec<String> = self
            .note
            .signatures
            .iter()
            .map(|s| format!("{} ({})", s.name, hex::encode(s.key_id)))
            .collect();
        format!(
            "{what} (size {}) is not signed by any pinned log key; its signatures: {}",
            self.checkpoint.size,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )
    }

    /// The names of the witnesses in `keys` with a valid cosignature on this checkpoint.
    pub fn witnessed_by(&self, keys: &Keys) -> Vec<String> {
        keys.witnesses
            .iter()
            .filter(|w| {
                self.note.signatures.iter().any(|s| {
                    s.name == w.name()
                        && s.key_id == w.key_id()
                        && cosignature::verify(w, &self.note.text, s).is_ok()
                })
            })
            .map(|w| w.name().to_owned())
            .collect()
    }
}

/// A checkpoint file's note: the note text itself (as the witness serves it, or as saved by
/// `--remember`), or a `GET /v1/log/checkpoint` JSON body (its `note`).
pub fn read_note_file(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    if text.trim_start().starts_with('{') {
        let body: CheckpointBody = serde_json::from_str(&text).map_err(|e| Error::Input {
            what: path.display().to_string(),
            why: format!("not a checkpoint body: {e}"),
        })?;
        return Ok(body.note);
    }
    Ok(text)
}
