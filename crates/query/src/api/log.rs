//! `/v1/log/...`: the workspace's tamper-evident log (docs/integrity.md): its latest signed
//! checkpoint with the witnesses' cosignatures, inclusion and consistency proofs, its leaves,
//! the signing keys and the retention history. Bodies are [`auditlog_tlog::wire`]'s.
//!
//! A proof reads O(log n) hashes: the nodes it needs ([`merkle::inclusion_nodes`],
//! [`merkle::consistency_nodes`]) live in a handful of tiles ([`tiles::tiles_for`]), read in
//! one statement, and the proof is computed over them ([`TileSet`]). An inclusion proof finds
//! the event's leaf by primary key in `log_leaves_by_event` at the same time as the
//! checkpoint, and keeps it once the level-0 tile read with the proof's tiles holds its leaf
//! hash at its index: two round trips to ClickHouse (BENCHMARKS.md, proof latency). Every size
//! asked about is at most the latest checkpoint's: leaves past it may still be re-sequenced.

use std::sync::Arc;

use auditlog_store::log::read;
use auditlog_store::log::rows::{CheckpointRow, CosignatureRow, LeafRow};
use auditlog_tlog::merkle::{self, Hash, Node, NodeReader as _};
use auditlog_tlog::wire::{
    CheckpointBody, ConsistencyBody, InclusionBody, KeysBody, LeafBody, LeavesPage,
    RetentionHistory,
};
use auditlog_tlog::{tiles, LeafData, Tile, TileId, TileSet};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use utoipa::IntoParams;
use uuid::Uuid;

use super::openapi::{NotFound, V1Errors};
use super::{auth, AppState};
use crate::filter::shown;
use crate::params::Params;
use crate::{Error, Result};

/// Parameters of `GET /v1/log/proof/inclusion`.
pub const INCLUSION_PARAMS: [&str; 2] = ["event_id", "tree_size"];
/// Parameters of `GET /v1/log/proof/consistency`.
pub const CONSISTENCY_PARAMS: [&str; 2] = ["first", "second"];
/// Parameters of `GET /v1/log/leaves`.
pub const LEAVES_PARAMS: [&str; 2] = ["start", "limit"];
/// Default page of `GET /v1/log/leaves`.
pub const DEFAULT_LEAVES: u32 = 1000;
/// Largest page of `GET /v1/log/leaves`.
pub const MAX_LEAVES: u32 = 10_000;

/// Standard base64, as hashes are written in checkpoints.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A stored leaf as the API and the export write it.
pub fn leaf_body(row: &LeafRow) -> LeafBody {
    LeafBody {
        leaf_index: row.leaf_index,
        event_id: row.event_id.to_string(),
        time_ms: row.time,
        content_sha256: hex::encode(row.content_sha256),
        leaf_hash: b64(&row.leaf_hash),
    }
}

/// A checkpoint with its cosignatures: the stored note (log signature) followed by every
/// witness's cosignature line for that tree size, so `note` is one valid signed note.
pub fn checkpoint_body(row: &CheckpointRow, cosignatures: &[CosignatureRow]) -> CheckpointBody {
    let mut note = row.note.clone();
    if !note.is_empty() && !note.ends_with('\n') {
        note.push('\n');
    }
    let mut witnesses = Vec::new();
    for c in cosignatures {
        let line = c.signature_line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            continue;
        }
        if !note.lines().any(|l| l == line) {
            note.push_str(line);
            note.push('\n');
        }
        if !witnesses.contains(&c.witness) {
            witnesses.push(c.witness.clone());
        }
    }
    CheckpointBody {
        origin: row.note.lines().next().unwrap_or_default().to_owned(),
        tree_size: row.tree_size,
        root_hash: b64(&row.root_hash),
        signed_at_ms: row.signed_at,
        note,
        witnesses,
    }
}

/// The latest checkpoint row of `ws`; 404 `no_checkpoint` without one.
async fn latest_row(s: &AppState, ws: &str) -> Result<CheckpointRow> {
    read::latest_checkpoint(s.reader.client(), ws)
        .await?
        .ok_or_else(|| {
            Error::NoCheckpoint(format!(
                "the log of workspace {ws} has no signed checkpoint yet (its events are not \
                 sequenced yet, or no checkpoint was signed since)"
            ))
        })
}

/// The latest checkpoint of `ws` with its cosignatures; 404 `no_checkpoint` without one.
pub async fn latest(s: &AppState, ws: &str) -> Result<CheckpointBody> {
    let row = latest_row(s, ws).await?;
    let cosignatures = read::cosignatures(s.reader.client(), ws, row.tree_size).await?;
    Ok(checkpoint_body(&row, &cosignatures))
}

/// The tiles `ids`, read in one statement.
async fn tile_set(s: &AppState, ws: &str, ids: &[TileId]) -> Result<TileSet> {
    let rows = read::tiles(s.reader.client(), ws, ids).await?;
    let mut set = TileSet::default();
    for r in rows {
        let id = TileId {
            level: r.tile_level,
            index: r.tile_index,
        };
        let tile = Tile::from_bytes(id, &r.hashes)
            .map_err(|e| Error::Internal(format!("log_tiles {id:?} of {ws}: {e}")))?;
        set.insert(tile);
    }
    Ok(set)
}

fn proof_error(what: &str, e: auditlog_tlog::Error) -> Error {
    Error::Internal(format!("{what}: {e}"))
}

fn hashes(proof: &[Hash]) -> Vec<String> {
    proof.iter().map(|h| b64(h)).collect()
}

/// A non-negative integer parameter; empty counts as absent.
fn uint(p: &Params, name: &str) -> Result<Option<u64>> {
    match p.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Error::bad(name, format!("{} is not a non-negative integer", shown(v)))),
    }
}

/// The token's workspace and the query string, checked against `accepted`.
async fn request(
    s: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    accepted: &[&str],
) -> Result<(String, Params)> {
    let ws = auth::workspace(s, headers).await?;
    let p = Params::parse(raw)?;
    p.only(accepted)?;
    Ok((ws, p))
}

/// The latest signed checkpoint of the workspace's log.
///
/// `note` is the C2SP signed note: the checkpoint body (origin, size, root, `time <ms>`), a
/// blank line, the log's signature line, then every witness cosignature line received for
/// this size (C2SP tlog-cosignature/v1). Takes no parameters.
#[utoipa::path(
    get,
    path = "/v1/log/checkpoint",
    operation_id = "getLogCheckpoint",
    tag = "log",
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The checkpoint.", body = CheckpointBody),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
pub async fn checkpoint(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let (ws, _) = request(&s, &headers, raw.as_deref(), &[]).await?;
    Ok(Json(latest(&s, &ws).await?).into_response())
}

/// Parameters of the inclusion proof.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionParams {
    /// UUID of the event (required); one that is not a leaf below the latest checkpoint is a
    /// 404 `not_in_log`.
    #[param(format = Uuid)]
    pub event_id: String,
    /// The tree size to prove inclusion in: above the event's leaf index and at most the
    /// latest checkpoint's size (its default); otherwise a 400 naming `tree_size`.
    pub tree_size: Option<u64>,
}

/// An event's leaf and its inclusion proof (RFC 9162 2.1.3) in a tree size.
///
/// Verify it by recomputing the leaf hash from `leaf` (docs/integrity.md) and the root from
/// the proof: it must equal the root of a checkpoint of `tree_size`.
#[utoipa::path(
    get,
    path = "/v1/log/proof/inclusion",
    operation_id = "getInclusionProof",
    tag = "log",
    params(InclusionParams),
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The leaf and its proof.", body = InclusionBody),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
pub async fn inclusion(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let (ws, p) = request(&s, &headers, raw.as_deref(), &INCLUSION_PARAMS).await?;
    let id = match p.get("event_id").filter(|v| !v.is_empty()) {
        None => return Err(Error::bad("event_id", "required: the UUID of an event")),
        Some(v) => Uuid::parse_str(v)
            .map_err(|_| Error::bad("event_id", format!("{} is not a UUID", shown(v))))?,
    };
    let asked = uint(&p, "tree_size")?;
    // The checkpoint and the event's candidate leaves at once (neither needs the other).
    let (cp, candidates) = tokio::try_join!(latest_row(&s, &ws), async {
        Ok::<_, Error>(read::leaf_candidates(s.reader.client(), &ws, &id).await?)
    })?;
    let size = asked.unwrap_or(cp.tree_size);
    if size > cp.tree_size {
        return Err(Error::bad(
            "tree_size",
            format!(
                "{size} is above the latest checkpoint's size {}",
                cp.tree_size
            ),
        ));
    }
    let (leaf, set) = match confirmed(&s, &ws, candidates, cp.tree_size, size).await? {
        Some(found) => found,
        None => {
            // Not in the lookup (sequenced before migration 0013) or no candidate confirmed:
            // the leaves themselves (their current versions) decide.
            let leaf = read::leaves_of_event(s.reader.client(), &ws, &id)
                .await?
                .into_iter()
                .find(|l| l.leaf_index < cp.tree_size)
                .ok_or_else(|| {
                    Error::NotInLog(format!(
                        "event_id: {id} is not a leaf below the latest checkpoint (size {}): \
                         unknown, or not sequenced and signed yet",
                        cp.tree_size
                    ))
                })?;
            let set = tile_set(&s, &ws, &proof_tiles(leaf.leaf_index, size)?).await?;
            (leaf, set)
        }
    };
    if size <= leaf.leaf_index {
        return Err(Error::bad(
            "tree_size",
            format!(
                "{size} does not include the event: its leaf index is {}, so tree_size must be above it",
                leaf.leaf_index
            ),
        ));
    }
    let proof = merkle::inclusion_proof(leaf.leaf_index, size, &set)
        .map_err(|e| proof_error("inclusion proof", e))?;
    Ok(Json(InclusionBody {
        leaf: leaf_body(&leaf),
        tree_size: size,
        hashes: hashes(&proof),
    })
    .into_response())
}

/// The tiles an inclusion proof of leaf `index` in `size` reads, and the level-0 tile holding
/// the leaf's own hash (checked against the leaf; for `size <= index`, only that tile).
fn proof_tiles(index: u64, size: u64) -> Result<Vec<TileId>> {
    let mut ids = if index < size {
        let nodes =
            merkle::inclusion_nodes(index, size).map_err(|e| proof_error("inclusion nodes", e))?;
        tiles::tiles_for(&nodes, size)
    } else {
        Vec::new()
    };
    ids.push(TileId {
        level: 0,
        index: index / tiles::TILE_WIDTH,
    });
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The first of `candidates` (from `log_leaves_by_event`, in index order) below `cp_size`
/// whose leaf hash (recomputed from its fields) is the one the log's level-0 tile holds at its
/// index, with the tiles of its inclusion proof in `size`: the leaf the log holds there, since
/// the tiles are what every proof is computed from. `None` when no candidate is confirmed.
async fn confirmed(
    s: &AppState,
    ws: &str,
    candidates: Vec<LeafRow>,
    cp_size: u64,
    size: u64,
) -> Result<Option<(LeafRow, TileSet)>> {
    for leaf in candidates.into_iter().filter(|l| l.leaf_index < cp_size) {
        let set = tile_set(s, ws, &proof_tiles(leaf.leaf_index, size)?).await?;
        let held = set.node(Node {
            level: 0,
            index: leaf.leaf_index,
        });
        // The hash is recomputed from the row's own fields: a row whose fields do not give
        // its `leaf_hash` (written by anyone but the sequencer) is refused too.
        let data = LeafData {
            event_id: leaf.event_id.to_string(),
            time_ms: leaf.time,
            content_sha256: leaf.content_sha256,
        };
        let hash = data.leaf_hash();
        if hash == leaf.leaf_hash && held.is_ok_and(|h| h == hash) {
            return Ok(Some((leaf, set)));
        }
    }
    Ok(None)
}

/// Parameters of the consistency proof.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The older tree size (required), at most `second`; otherwise a 400 naming `first`.
    pub first: u64,
    /// The newer tree size, at most the latest checkpoint's size (its default); otherwise a
    /// 400 naming `second`.
    pub second: Option<u64>,
}

/// A consistency proof (RFC 9162 2.1.4) between two tree sizes.
///
/// Proves that the tree of `first` leaves is a prefix of the tree of `second` leaves: verify
/// it against the roots of the two checkpoints. Empty when `first` is 0 or equals `second`.
#[utoipa::path(
    get,
    path = "/v1/log/proof/consistency",
    operation_id = "getConsistencyProof",
    tag = "log",
    params(ConsistencyParams),
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The proof.", body = ConsistencyBody),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
pub async fn consistency(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let (ws, p) = request(&s, &headers, raw.as_deref(), &CONSISTENCY_PARAMS).await?;
    let first =
        uint(&p, "first")?.ok_or_else(|| Error::bad("first", "required: the older tree size"))?;
    let asked = uint(&p, "second")?;
    if let Some(second) = asked.filter(|second| first > *second) {
        return Err(Error::bad(
            "first",
            format!("{first} is above second ({second})"),
        ));
    }
    // With `second` given, the checkpoint and the tiles are read at once (the sizes are
    // checked against the checkpoint before anything is answered).
    let (cp, read_ahead) = match asked {
        Some(second) => {
            let (cp, set) = tokio::try_join!(
                latest_row(&s, &ws),
                consistency_tiles(&s, &ws, first, second)
            )?;
            (cp, Some(set))
        }
        None => (latest_row(&s, &ws).await?, None),
    };
    let second = asked.unwrap_or(cp.tree_size);
    if second > cp.tree_size {
        return Err(Error::bad(
            "second",
            format!(
                "{second} is above the latest checkpoint's size {}",
                cp.tree_size
            ),
        ));
    }
    if first > second {
        return Err(Error::bad(
            "first",
            format!("{first} is above second ({second})"),
        ));
    }
    let set = match read_ahead {
        Some(set) => set,
        None => consistency_tiles(&s, &ws, first, second).await?,
    };
    let proof = merkle::consistency_proof(first, second, &set)
        .map_err(|e| proof_error("consistency proof", e))?;
    Ok(Json(ConsistencyBody {
        first,
        second,
        hashes: hashes(&proof),
    })
    .into_response())
}

/// The tiles a consistency proof from `first` to `second` reads (`first <= second`).
async fn consistency_tiles(s: &AppState, ws: &str, first: u64, second: u64) -> Result<TileSet> {
    let nodes = merkle::consistency_nodes(first, second)
        .map_err(|e| proof_error("consistency nodes", e))?;
    tile_set(s, ws, &tiles::tiles_for(&nodes, second)).await
}

/// Parameters of the leaves.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeavesParams {
    /// The first leaf index, at most the latest checkpoint's size; default 0.
    #[param(default = json!(0))]
    pub start: Option<u64>,
    /// Leaves per page, 1..=10000, default 1000.
    #[param(minimum = 1, maximum = 10000, default = json!(DEFAULT_LEAVES))]
    pub limit: Option<u32>,
}

/// The log's leaves in index order, below the latest checkpoint's size.
///
/// Walk every page with `next_start` to read the whole log (`null` at the checkpoint's size).
#[utoipa::path(
    get,
    path = "/v1/log/leaves",
    operation_id = "listLogLeaves",
    tag = "log",
    params(LeavesParams),
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "A page of leaves.", body = LeavesPage),
        (status = 404, response = NotFound),
        V1Errors,
    )
)]
pub async fn leaves(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let (ws, p) = request(&s, &headers, raw.as_deref(), &LEAVES_PARAMS).await?;
    let start = uint(&p, "start")?.unwrap_or(0);
    let limit = match p.get("limit").filter(|v| !v.is_empty()) {
        None => DEFAULT_LEAVES,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_LEAVES).contains(&n) => n,
            _ => {
                return Err(Error::bad(
                    "limit",
                    format!("{} is not an integer in 1..={MAX_LEAVES}", shown(v)),
                ))
            }
        },
    };
    let cp = latest_row(&s, &ws).await?;
    if start > cp.tree_size {
        return Err(Error::bad(
            "start",
            format!(
                "{start} is above the latest checkpoint's size {}",
                cp.tree_size
            ),
        ));
    }
    let end = start.saturating_add(u64::from(limit)).min(cp.tree_size);
    let rows = read::leaves(s.reader.client(), &ws, start, end).await?;
    Ok(Json(LeavesPage {
        data: rows.iter().map(leaf_body).collect(),
        next_start: (end < cp.tree_size).then_some(end),
    })
    .into_response())
}

/// The public keys of the log's checkpoints, current and retired, newest first.
///
/// Verifier key texts (`<name>+<key id>+<base64 key>`, Go's `note` format). Pin them out of
/// band: a key served here proves nothing by itself. Takes no parameters.
#[utoipa::path(
    get,
    path = "/v1/log/keys",
    operation_id = "getLogKeys",
    tag = "log",
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The keys.", body = KeysBody),
        V1Errors,
    )
)]
pub async fn keys(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    request(&s, &headers, raw.as_deref(), &[]).await?;
    let rows = read::keys(s.reader.client()).await?;
    Ok(Json(KeysBody {
        keys: rows.into_iter().map(|k| k.verifier_key).collect(),
    })
    .into_response())
}

/// The workspace's retention over time, from its plan changes, oldest first.
///
/// The first period starts at the smallest 64-bit integer on the Free plan (7 days); each plan
/// change starts a period. `retention_days` 0 is unlimited. Takes no parameters.
#[utoipa::path(
    get,
    path = "/v1/log/retention",
    operation_id = "getLogRetention",
    tag = "log",
    security(("workspaceToken" = [])),
    responses(
        (status = 200, description = "The retention history.", body = RetentionHistory),
        V1Errors,
    )
)]
pub async fn retention(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let (ws, _) = request(&s, &headers, raw.as_deref(), &[]).await?;
    let periods = read::retention_history(s.reader.client(), &ws).await?;
    Ok(Json(RetentionHistory {
        workspace_id: ws,
        periods,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosig(witness: &str, line: &str) -> CosignatureRow {
        CosignatureRow {
            workspace_id: "w".into(),
            tree_size: 3,
            witness: witness.into(),
            signature_line: line.into(),
            cosigned_at: 0,
        }
    }

    #[test]
    fn cosignature_lines_follow_the_log_signature_once() {
        let row = CheckpointRow {
            workspace_id: "w".into(),
            tree_size: 3,
            root_hash: [7; 32],
            signed_at: 42,
            key_name: "log".into(),
            note: "example.com/w\n3\nBwc=\ntime 42\n\n\u{2014} log AAAA\n".into(),
        };
        let body = checkpoint_body(
            &row,
            &[
                cosig("w1", "\u{2014} w1 BBBB\n"),
                cosig("w2", "\u{2014} w2 CCCC"),
                cosig("w2", "\u{2014} w2 CCCC"),
            ],
        );
        assert_eq!(
            body.note,
            "example.com/w\n3\nBwc=\ntime 42\n\n\u{2014} log AAAA\n\u{2014} w1 BBBB\n\u{2014} w2 CCCC\n"
        );
        assert_eq!(body.origin, "example.com/w");
        assert_eq!(body.witnesses, ["w1", "w2"]);
        assert_eq!(body.root_hash, b64(&[7; 32]));
        assert_eq!(body.signed_at_ms, 42);
    }
}
