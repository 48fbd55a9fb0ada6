//! One leaf against what it commits to: its hash recomputed from `(event_id, time_ms,
//! content_sha256)`, and a stored event's content, id and time (the export's leaf lines and
//! `verify --inclusion --event`).

use auditlog_tlog::leaf::content_sha256;
use auditlog_tlog::wire::LeafBody;
use auditlog_tlog::{Hash, LeafData};
use serde::Deserialize;

use crate::export::{b64, decode_hash};
use crate::report::{Failure, FailureKind};

/// The two fields of an event a leaf binds besides its content.
#[derive(Debug, Deserialize)]
pub(crate) struct EventKey {
    pub(crate) event_id: String,
    pub(crate) time: String,
}

/// The leaf data of a leaf body and its recomputed leaf hash; a malformed hash field is a
/// [`FailureKind::Malformed`] failure.
pub fn leaf_of_body(leaf: &LeafBody) -> Result<(LeafData, Hash), Failure> {
    let content: Option<Hash> = hex::decode(&leaf.content_sha256)
        .ok()
        .and_then(|b| b.try_into().ok());
    let Some(content) = content else {
        return Err(Failure::at(
            FailureKind::Malformed,
            leaf.leaf_index,
            Some(&leaf.event_id),
            format!(
                "content_sha256 {:?} is not 64 hex digits",
                leaf.content_sha256
            ),
        ));
    };
    let data = LeafData {
        event_id: leaf.event_id.clone(),
        time_ms: leaf.time_ms,
        content_sha256: content,
    };
    let hash = data.leaf_hash();
    Ok((data, hash))
}

/// A failure when the leaf's given `leaf_hash` is not `recomputed`.
pub fn check_leaf_hash(leaf: &LeafBody, recomputed: &Hash) -> Option<Failure> {
    if decode_hash(&leaf.leaf_hash).as_ref() == Some(recomputed) {
        return None;
    }
    Some(Failure::at(
        FailureKind::LeafHashMismatch,
        leaf.leaf_index,
        Some(&leaf.event_id),
        format!(
            "leaf_hash {} is not the hash of its (event_id, time_ms, content_sha256), {}",
            leaf.leaf_hash,
            b64(recomputed)
        ),
    ))
}

/// Every way the stored event `text` (its JSON as written) differs from leaf `index`.
pub fn check_event(index: u64, leaf: &LeafData, text: &str) -> Vec<Failure> {
    let id = Some(leaf.event_id.as_str());
    let mut out = Vec::new();
    let got = content_sha256(text.as_bytes());
    if got != leaf.content_sha256 {
        out.push(Failure::at(
            FailureKind::ContentAltered,
            index,
            id,
            format!(
                "content altered: the stored event hashes to {}, the leaf commits to {}",
                hex::encode(got),
                hex::encode(leaf.content_sha256)
            ),
        ));
    }
    let key: EventKey = match serde_json::from_str(text) {
        Ok(k) => k,
        Err(e) => {
            out.push(Failure::at(
                FailureKind::EventUnreadable,
                index,
                id,
                format!("the stored event has no readable event_id and time: {e}"),
            ));
            return out;
        }
    };
    if key.event_id != leaf.event_id {
        out.push(Failure::at(
            FailureKind::EventIdMismatch,
            index,
            id,
            format!(
                "the stored event is {}, the leaf is of {}",
                key.event_id, leaf.event_id
            ),
        ));
    }
    match chrono::DateTime::parse_from_rfc3339(&key.time).map(|t| t.timestamp_millis()) {
        Ok(ms) if ms == leaf.time_ms => {}
        Ok(ms) => out.push(Failure::at(
            FailureKind::TimeMismatch,
            index,
            id,
            format!(
                "the stored event's time is {} ({ms} ms), the leaf's {} ms",
                key.time, leaf.time_ms
            ),
        )),
        Err(e) => out.push(Failure::at(
            FailureKind::EventUnreadable,
            index,
            id,
            format!(
                "the stored event's time {:?} is not RFC 3339: {e}",
                key.time
            ),
        )),
    }
    out
}
