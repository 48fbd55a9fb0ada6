//! The verifiable export (`GET /v1/export?format=log`), checked one line at a time: memory is
//! the log's right edge ([`Appender`]) and the failures listed, whatever the log's size.
//!
//! Line by line (docs/verification.md "Export"):
//! 1. the header: its checkpoint note is signed by a pinned key, its origin ends with
//!    `/<workspace_id>`, its fields agree with the note, enough witnesses cosigned it (or a
//!    trusted earlier checkpoint), no trusted earlier checkpoint is larger;
//! 2. each leaf line: numbered from 0; the leaf hash is recomputed from the leaf's
//!    `(event_id, time_ms, content_sha256)`; the event, when present, hashes to
//!    `content_sha256` and carries the leaf's id and time; when absent, retention allowed it;
//!    the recomputed hash is appended, and at each trusted earlier checkpoint's size the root
//!    must be that checkpoint's;
//! 3. each `unlogged` line: a row stored over a minute before the export is a failure;
//! 4. at the end: as many leaves as the tree size, and the root is the checkpoint's.

use auditlog_tlog::wire::{ExportHeader, ExportLeaf, ExportUnlogged, RetentionPeriod};
use auditlog_tlog::{Appender, Hash};
use base64::Engine as _;
use serde::Deserialize;

use crate::checkpoint::{Keys, SignedCheckpoint};
use crate::leaf::{check_event, check_leaf_hash, leaf_of_body, EventKey};
use crate::report::{Failure, FailureKind, Report};
use crate::retention::{may_be_expired, GRACE_MS};

/// A stored row newer than this before the export may not be sequenced yet (pending).
pub const PENDING_MS: i64 = 60_000;

/// A checkpoint trusted before this export (`--checkpoint`, the witness's, a remembered one,
/// the API's latest): the export's log must extend it.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Where it came from, for messages ("the witness's checkpoint").
    pub source: String,
    /// The checkpoint (already verified by the caller).
    pub checkpoint: SignedCheckpoint,
}

/// What the export is checked against.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Pinned log and witness keys.
    pub keys: Keys,
    /// Valid witness cosignatures needed (on the export's checkpoint or on a reference).
    pub min_witnesses: usize,
    /// Trusted earlier checkpoints.
    pub references: Vec<Reference>,
    /// The verifier's clock, epoch ms: the export cannot be from later.
    pub now_ms: i64,
    /// Failures listed in the report before only counting.
    pub max_listed: usize,
}

/// The header's facts the leaf lines are checked with.
#[derive(Debug)]
struct Head {
    tree_size: u64,
    root: Option<Hash>,
    exported_at_ms: i64,
    retention: Vec<RetentionPeriod>,
    /// Reference sizes still to reach, ascending, with their roots and sources.
    due: Vec<(u64, Hash, String)>,
}

impl Head {
    /// Without a usable header: no checkpoint, judged at the verifier's clock.
    fn unchecked(now_ms: i64) -> Head {
        Head {
            tree_size: 0,
            root: None,
            exported_at_ms: now_ms,
            retention: Vec::new(),
            due: Vec::new(),
        }
    }
}

/// The streaming verifier: [`ExportVerifier::line`] per line, then [`ExportVerifier::finish`].
#[derive(Debug)]
pub struct ExportVerifier {
    opts: ExportOptions,
    report: Report,
    head: Option<Head>,
    signed: Option<SignedCheckpoint>,
    appender: Appender,
    next_index: u64,
    line_no: u64,
}

#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

impl ExportVerifier {
    /// A verifier expecting the header line first.
    pub fn new(opts: ExportOptions) -> Self {
        let report = Report::new(opts.max_listed);
        ExportVerifier {
            opts,
            report,
            head: None,
            signed: None,
            appender: Appender::new(),
            next_index: 0,
            line_no: 0,
        }
    }

    /// Check one line (without its line break; blank lines are skipped).
    pub fn line(&mut self, line: &str) {
        self.line_no += 1;
        if line.trim().is_empty() {
            return;
        }
        let kind = match serde_json::from_str::<Kind>(line) {
            Ok(k) => k.kind.into_owned(),
            Err(e) => return self.malformed(format!("not a JSON object with a type: {e}")),
        };
        match (kind.as_str(), self.head.is_some()) {
            ("header", false) => self.header(line),
            ("header", true) => self.malformed("a second header".to_owned()),
            (_, false) => {
                self.report.fail(Failure::new(
                    FailureKind::MissingHeader,
                    format!("line {}: a {kind} line before the header", self.line_no),
                ));
                // Checked without a checkpoint from here on.
                self.head = Some(Head::unchecked(self.opts.now_ms));
                self.line(line);
            }
            ("leaf", true) => self.leaf(line),
            ("unlogged", true) => self.unlogged(line),
            (other, true) => self.malformed(format!("unknown line type {other:?}")),
        }
    }

    /// The export's checkpoint, once the header was read and a pinned key signed it.
    pub fn checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.signed.as_ref().filter(|c| c.signed_by.is_some())
    }

    /// The report, after the last line.
    pub fn finish(mut self) -> Report {
        let Some(head) = self.head.take() else {
            self.report.fail(Failure::new(
                FailureKind::MissingHeader,
                "the export is empty: no header line",
            ));
            return self.report;
        };
        let size = self.appender.size();
        if size < head.tree_size {
            self.report.fail(Failure::new(
                FailureKind::Truncated,
                format!(
                    "truncated: the export has {size} of the checkpoint's {} leaves",
                    head.tree_size
                ),
            ));
        } else if let Some(root) = head.root {
            if size == head.tree_size && self.appender.root() != root {
                self.report.fail(Failure::new(
                    FailureKind::RootMismatch,
                    format!(
                        "the root over the {size} leaves is {}, the checkpoint's is {}: leaves were altered, added, removed or reordered",
                        b64(&self.appender.root()),
                        b64(&root)
                    ),
                ));
            }
        }
        self.report
    }

    fn malformed(&mut self, why: String) {
        self.report.fail(Failure::new(
            FailureKind::Malformed,
            format!("line {}: {why}", self.line_no),
        ));
    }

    fn header(&mut self, line: &str) {
        let h: ExportHeader = match serde_json::from_str(line) {
            Ok(h) => h,
            Err(e) => {
                self.report.fail(Failure::new(
                    FailureKind::MissingHeader,
                    format!("line {}: the header is malformed: {e}", self.line_no),
                ));
                self.head = Some(Head::unchecked(self.opts.now_ms));
                return;
            }
        };
        let body = &h.checkpoint;
        let mut head = Head {
            tree_size: body.tree_size,
            root: decode_hash(&body.root_hash),
            exported_at_ms: h.exported_at_ms,
            retention: h.retention.clone(),
            due: Vec::new(),
        };
        self.report.origin = Some(body.origin.clone());
        self.report.tree_size = Some(body.tree_size);
        if h.exported_at_ms > self.opts.now_ms.saturating_add(GRACE_MS) {
            self.report.fail(Failure::new(
                FailureKind::FutureExport,
                format!(
                    "the export says it was made at {} ms, later than now ({} ms): its retention judgement cannot be trusted",
                    h.exported_at_ms, self.opts.now_ms
                ),
            ));
        }
        let cp = match SignedCheckpoint::parse(&body.note, &self.opts.keys) {
            Ok(cp) => cp,
            Err(f) => {
                // Checked against the header's unsigned fields, which is reported.
                self.report.fail(f);
                self.head = Some(head);
                return;
            }
        };
        if cp.signed_by.is_none() {
            self.report.fail(Failure::new(
                FailureKind::BadSignature,
                cp.unsigned_message("the export's checkpoint"),
            ));
        }
        let c = &cp.checkpoint;
        let suffix = format!("/{}", h.workspace_id);
        if !c.origin.ends_with(&suffix) || h.workspace_id.is_empty() {
            self.report.fail(Failure::new(
                FailureKind::WrongOrigin,
                format!(
                    "the checkpoint's origin {:?} is not the log of workspace {:?}",
                    c.origin, h.workspace_id
                ),
            ));
        }
        if c.origin != body.origin || c.size != body.tree_size || Some(c.root) != head.root {
            self.report.fail(Failure::new(
                FailureKind::HeaderMismatch,
                format!(
                    "the header says {} size {} root {}, its signed note {} size {} root {}",
                    body.origin,
                    body.tree_size,
                    body.root_hash,
                    c.origin,
                    c.size,
                    b64(&c.root)
                ),
            ));
        }
        // The signed note is what counts.
        head.tree_size = c.size;
        head.root = Some(c.root);
        self.report.origin = Some(c.origin.clone());
        self.report.tree_size = Some(c.size);
        self.check_witnesses(&cp);
        for r in &self.opts.references {
            let rc = &r.checkpoint.checkpoint;
            if rc.origin != c.origin {
                self.report.fail(Failure::new(
                    FailureKind::WrongOrigin,
                    format!(
                        "{} is of the log {:?}, the export of {:?}",
                        r.source, rc.origin, c.origin
                    ),
                ));
            } else if rc.size > c.size {
                self.report.fail(Failure::new(
                    FailureKind::RolledBack,
                    format!(
                        "rolled back / truncated: the export's checkpoint has {} leaves, {} had {}",
                        c.size, r.source, rc.size
                    ),
                ));
            } else {
                head.due.push((rc.size, rc.root, r.source.clone()));
            }
        }
        head.due.sort_by_key(|d| std::cmp::Reverse(d.0));
        self.head = Some(head);
        self.signed = Some(cp);
        self.check_due();
    }

    fn check_witnesses(&mut self, cp: &SignedCheckpoint) {
        let need = self.opts.min_witnesses;
        if need == 0 {
            return;
        }
        let on_export = cp.witnessed_by(&self.opts.keys);
        if on_export.len() >= need {
            return;
        }
        let on_reference = self
            .opts
            .references
            .iter()
            .map(|r| r.checkpoint.witnessed_by(&self.opts.keys).len())
            .max()
            .unwrap_or(0);
        if on_reference >= need {
            return;
        }
        self.report.fail(Failure::new(
            FailureKind::NotWitnessed,
            format!(
                "{} valid witness cosignature(s) on the export's checkpoint ({}), {need} needed",
                on_export.len(),
                on_export.join(", ")
            ),
        ));
    }

    /// Compare the root with every reference whose size has been reached.
    fn check_due(&mut self) {
        let Some(head) = self.head.as_mut() else {
            return;
        };
        while head.due.last().is_some_and(|d| d.0 == self.appender.size()) {
            let Some((size, root, source)) = head.due.pop() else {
                break;
            };
            let ours = self.appender.root();
            if ours != root {
                self.report.fail(Failure::new(
                    FailureKind::Inconsistent,
                    format!(
                        "the export's log at size {size} has root {}, {source} had {}: the log was rewritten",
                        b64(&ours),
                        b64(&root)
                    ),
                ));
            }
        }
    }

    fn leaf(&mut self, line: &str) {
        let l: ExportLeaf = match serde_json::from_str(line) {
            Ok(l) => l,
            Err(e) => {
                self.next_index += 1;
                return self.malformed(format!("leaf line: {e}"));
            }
        };
        let index = l.leaf.leaf_index;
        let id = l.leaf.event_id.clone();
        let fail = |r: &mut Report, kind, msg: String| {
            r.fail(Failure::at(kind, index, Some(&id), msg));
        };
        if index != self.next_index {
            fail(
                &mut self.report,
                FailureKind::LeafOutOfOrder,
                format!("leaf line numbered {index}, expected {}", self.next_index),
            );
        }
        // Two lines swapped are two failures, not every line after them.
        self.next_index = self.next_index.max(index.saturating_add(1));
        let Some((tree_size, exported_at)) =
            self.head.as_ref().map(|h| (h.tree_size, h.exported_at_ms))
        else {
            return;
        };
        if index >= tree_size {
            fail(
                &mut self.report,
                FailureKind::BeyondCheckpoint,
                format!("a leaf beyond the checkpoint's {tree_size} leaves"),
            );
        }
        self.report.leaves += 1;
        let (data, recomputed) = match leaf_of_body(&l.leaf) {
            Ok(v) => v,
            Err(f) => return self.report.fail(f),
        };
        if let Some(f) = check_leaf_hash(&l.leaf, &recomputed) {
            self.report.fail(f);
        }
        self.appender.append(recomputed);
        if self
            .appender
            .size()
            .is_multiple_of(auditlog_tlog::tiles::TILE_WIDTH)
        {
            // Full tiles are not needed here: only the edge is kept.
            drop(self.appender.take_changed());
        }
        self.check_due();
        match l.event {
            Some(event) => {
                self.report.events += 1;
                for f in check_event(index, &data, event.get()) {
                    self.report.fail(f);
                }
            }
            None if self
                .head
                .as_ref()
                .is_some_and(|h| may_be_expired(l.leaf.time_ms, &h.retention, exported_at)) =>
            {
                self.report.expired += 1;
            }
            None => fail(
                &mut self.report,
                FailureKind::DeletedEarly,
                format!(
                    "deleted before its retention ended (event time {}, exported at {})",
                    rfc3339(l.leaf.time_ms),
                    rfc3339(exported_at)
                ),
            ),
        }
    }

    fn unlogged(&mut self, line: &str) {
        let u: ExportUnlogged = match serde_json::from_str(line) {
            Ok(u) => u,
            Err(e) => return self.malformed(format!("unlogged line: {e}")),
        };
        let exported_at = self
            .head
            .as_ref()
            .map_or(self.opts.now_ms, |h| h.exported_at_ms);
        if u.inserted_at_ms.saturating_add(PENDING_MS) > exported_at {
            self.report.pending += 1;
            return;
        }
        let id = serde_json::from_str::<EventKey>(u.event.get())
            .map(|k| k.event_id)
            .ok();
        let mut f = Failure::new(
            FailureKind::Unlogged,
            format!(
                "stored but not in the log: stored at {}, {} s before the export, and no leaf covers it",
                rfc3339(u.inserted_at_ms),
                (exported_at - u.inserted_at_ms) / 1000
            ),
        );
        f.event_id = id;
        self.report.fail(f);
    }
}

/// The base64 text of a hash.
pub(crate) fn b64(h: &Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// A base64 hash, if it is one.
pub(crate) fn decode_hash(text: &str) -> Option<Hash> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?
        .try_into()
        .ok()
}

pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Check an export read from `input` (a file, stdin) line by line; `what` names it in errors.
pub fn verify_export_reader(
    mut input: impl std::io::BufRead,
    what: &str,
    opts: ExportOptions,
) -> Result<Report, crate::Error> {
    let mut v = ExportVerifier::new(opts);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|source| crate::Error::Read {
                path: what.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        v.line(text.trim_end_matches(['\n', '\r']));
    }
    Ok(v.finish())
}
