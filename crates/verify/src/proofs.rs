//! Proofs against signed checkpoints: an event's inclusion (`verify --inclusion`) and the
//! consistency of two checkpoints (`verify --consistency`, and the online checks of the API's
//! checkpoint against a witness's or a remembered one).

use auditlog_tlog::merkle::{verify_consistency, verify_inclusion};
use auditlog_tlog::wire::{ConsistencyBody, InclusionBody};
use auditlog_tlog::{Checkpoint, Hash};

use crate::checkpoint::{Keys, SignedCheckpoint};
use crate::export::decode_hash;
use crate::leaf::{check_event, check_leaf_hash, leaf_of_body};
use crate::report::{Failure, FailureKind, Report};
use crate::Error;

/// Check `proof` (a `GET /v1/log/proof/inclusion` body) against the signed checkpoint
/// `checkpoint_note`, and, with `event` (the event's JSON text), that the event is the leaf's.
pub fn check_inclusion(
    proof: &InclusionBody,
    checkpoint_note: &str,
    keys: &Keys,
    event: Option<&str>,
) -> Report {
    let mut report = Report::default();
    let cp = match SignedCheckpoint::verified(checkpoint_note, keys, "the checkpoint") {
        Ok(cp) => cp,
        Err(f) => {
            report.fail(f);
            return report;
        }
    };
    let c = &cp.checkpoint;
    report.origin = Some(c.origin.clone());
    report.tree_size = Some(c.size);
    let leaf = &proof.leaf;
    let index = leaf.leaf_index;
    let id = Some(leaf.event_id.as_str());
    if proof.tree_size != c.size {
        report.fail(Failure::at(
            FailureKind::NotIncluded,
            index,
            id,
            format!(
                "the proof is for tree size {}, the checkpoint has {}",
                proof.tree_size, c.size
            ),
        ));
        return report;
    }
    let (data, recomputed) = match leaf_of_body(leaf) {
        Ok(v) => v,
        Err(f) => {
            report.fail(f);
            return report;
        }
    };
    report.leaves = 1;
    if let Some(f) = check_leaf_hash(leaf, &recomputed) {
        report.fail(f);
    }
    match decode_hashes(&proof.hashes) {
        None => report.fail(Failure::at(
            FailureKind::Malformed,
            index,
            id,
            "a proof hash is not base64 of 32 bytes",
        )),
        Some(hashes) => {
            if let Err(e) = verify_inclusion(&recomputed, index, c.size, &hashes, &c.root) {
                report.fail(Failure::at(
                    FailureKind::NotIncluded,
                    index,
                    id,
                    format!("not included in the checkpoint of size {}: {e}", c.size),
                ));
            }
        }
    }
    if let Some(text) = event {
        report.events = 1;
        for f in check_event(index, &data, text) {
            report.fail(f);
        }
    }
    report
}

/// Check `proof` (a `GET /v1/log/proof/consistency` body) between the signed checkpoints
/// `old_note` and `new_note`.
pub fn check_consistency_notes(
    proof: &ConsistencyBody,
    old_note: &str,
    new_note: &str,
    keys: &Keys,
) -> Report {
    let mut report = Report::default();
    let old = SignedCheckpoint::verified(old_note, keys, "the old checkpoint");
    let new = SignedCheckpoint::verified(new_note, keys, "the new checkpoint");
    let (old, new) = match (old, new) {
        (Ok(o), Ok(n)) => (o, n),
        (o, n) => {
            for f in [o.err(), n.err()].into_iter().flatten() {
                report.fail(f);
            }
            return report;
        }
    };
    report.origin = Some(new.checkpoint.origin.clone());
    report.tree_size = Some(new.checkpoint.size);
    let (o, n) = (&old.checkpoint, &new.checkpoint);
    if proof.first != o.size || proof.second != n.size {
        report.fail(Failure::new(
            FailureKind::Inconsistent,
            format!(
                "the proof is from size {} to {}, the checkpoints have {} and {}",
                proof.first, proof.second, o.size, n.size
            ),
        ));
        return report;
    }
    match decode_hashes(&proof.hashes) {
        None => report.fail(Failure::new(
            FailureKind::Malformed,
            "a proof hash is not base64 of 32 bytes",
        )),
        Some(hashes) => {
            if let Some(f) = consistency_failure(o, n, &hashes, "the old checkpoint") {
                report.fail(f);
            }
        }
    }
    report
}

/// Why `new` does not extend `old` (named `what` in the message) by `proof`, if it does not:
/// another origin, a smaller size (rolled back), or a proof that does not verify.
pub fn consistency_failure(
    old: &Checkpoint,
    new: &Checkpoint,
    proof: &[Hash],
    what: &str,
) -> Option<Failure> {
    if old.origin != new.origin {
        return Some(Failure::new(
            FailureKind::WrongOrigin,
            format!(
                "{what} is of the log {:?}, not {:?}",
                old.origin, new.origin
            ),
        ));
    }
    if new.size < old.size {
        return Some(Failure::new(
            FailureKind::RolledBack,
            format!(
                "rolled back / truncated: the log's checkpoint has {} leaves, {what} had {}",
                new.size, old.size
            ),
        ));
    }
    verify_consistency(old.size, new.size, proof, &old.root, &new.root)
        .err()
        .map(|e| {
            Failure::new(
                FailureKind::Inconsistent,
                format!(
                    "the log at size {} is not an extension of {what} at size {}: {e}",
                    new.size, old.size
                ),
            )
        })
}

/// Base64 hashes, if each is one.
pub(crate) fn decode_hashes(texts: &[String]) -> Option<Vec<Hash>> {
    texts.iter().map(|t| decode_hash(t)).collect()
}

/// A proof file's JSON body (usage error when malformed).
pub fn parse_body<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Input {
        what: what.to_owned(),
        why: e.to_string(),
    })
}
