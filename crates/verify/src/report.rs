//! What a verification found: every failure with the leaf index, the event id and the reason
//! (docs/verification.md lists each [`FailureKind`] and what it means), and a summary.

use std::fmt;

use serde::Serialize;

/// Why something failed. The snake_case name is the `kind` of the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A line of the export (or a proof file) is not what the format says.
    Malformed,
    /// The export has no header line (or it is not the first line).
    MissingHeader,
    /// A checkpoint is not signed by any of the pinned log keys.
    BadSignature,
    /// A checkpoint's origin is not this workspace's log (or not the same log as another).
    WrongOrigin,
    /// The export header's checkpoint fields differ from its signed note.
    HeaderMismatch,
    /// Fewer valid witness cosignatures than `--min-witnesses`.
    NotWitnessed,
    /// The export's `exported_at` is later than the verifier's clock.
    FutureExport,
    /// A checkpoint is smaller than one trusted earlier: the log was rolled back or truncated.
    RolledBack,
    /// The log at an earlier trusted checkpoint's size has another root (a rewritten log), or a
    /// consistency proof does not verify.
    Inconsistent,
    /// Leaf lines not numbered 0, 1, 2...
    LeafOutOfOrder,
    /// A leaf line beyond the checkpoint's tree size.
    BeyondCheckpoint,
    /// The leaf hash is not the hash of the leaf's (event_id, time_ms, content_sha256).
    LeafHashMismatch,
    /// The stored event's content does not hash to the leaf's `content_sha256`.
    ContentAltered,
    /// The stored event's `event_id` is not the leaf's.
    EventIdMismatch,
    /// The stored event's `time` is not the leaf's.
    TimeMismatch,
    /// The stored event has no readable `event_id` or `time`.
    EventUnreadable,
    /// A leaf's event is gone although no retention period allowed its deletion yet.
    DeletedEarly,
    /// Fewer leaf lines than the checkpoint's tree size.
    Truncated,
    /// The root over the leaves is not the checkpoint's root.
    RootMismatch,
    /// A row stored more than a minute before the export that no leaf covers.
    Unlogged,
    /// An inclusion proof does not verify.
    NotIncluded,
}

/// One failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The leaf it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    /// The event it concerns, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl Failure {
    /// A failure not tied to a leaf.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            leaf_index: None,
            event_id: None,
            message: message.into(),
        }
    }
    /// A failure of leaf `index` (of event `event_id`, when known).
    pub fn at(
        kind: FailureKind,
        index: u64,
        event_id: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Failure {
            kind,
            leaf_index: Some(index),
            event_id: event_id.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.leaf_index {
            write!(f, "leaf {i}: ")?;
        }
        if let Some(id) = &self.event_id {
            write!(f, "event {id}: ")?;
        }
        write!(f, "{} ({})", self.message, kind_name(self.kind))
    }
}

fn kind_name(k: FailureKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Failures kept in a report before only counting (a rewritten log of millions of leaves
/// must not take its size in memory).
pub const DEFAULT_MAX_LISTED: usize = 1000;

/// Everything a verification found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The log's origin, once known.
    pub origin: Option<String>,
    /// The tree size verified (the export's or the proof's checkpoint).
    pub tree_size: Option<u64>,
    /// Leaf lines read.
    pub leaves: u64,
    /// Leaves whose event was present and checked.
    pub events: u64,
    /// Leaves whose event is gone, on time by retention.
    pub expired: u64,
    /// Stored events newer than a minute not yet in the log (not a failure).
    pub pending: u64,
    /// Every failure (up to `max_listed`, in the order found).
    pub failures: Vec<Failure>,
    /// How many failures in all (also those not listed).
    pub failure_count: u64,
    #[serde(skip)]
    max_listed: usize,
}

impl Default for Report {
    fn default() -> Self {
        Report::new(DEFAULT_MAX_LISTED)
    }
}

impl Report {
    /// An empty report listing at most `max_listed` failures.
    pub fn new(max_listed: usize) -> Self {
        Report {
            origin: None,
            tree_size: None,
            leaves: 0,
            events: 0,
            expired: 0,
            pending: 0,
            failures: Vec::new(),
            failure_count: 0,
            max_listed,
        }
    }
    /// Record a failure.
    pub fn fail(&mut self, f: Failure) {
        tracing::debug!(failure = %f, "verification failure");
        self.failure_count += 1;
        if self.failures.len() < self.max_listed {
            self.failures.push(f);
        }
    }
    /// Whether nothing failed.
    pub fn ok(&self) -> bool {
        self.failure_count == 0
    }
    /// Add another report's counts and failures (the export's after the checks before it);
    /// its origin and tree size, when it has them, replace this one's.
    pub fn absorb(&mut self, other: Report) {
        self.origin = other.origin.or(self.origin.take());
        self.tree_size = other.tree_size.or(self.tree_size);
        self.leaves += other.leaves;
        self.events += other.events;
        self.expired += other.expired;
        self.pending += other.pending;
        self.failure_count += other.failure_count - other.failures.len() as u64;
        for f in other.failures {
            self.fail(f);
        }
    }
    /// Whether a failure of `kind` was recorded (among those listed).
    pub fn has(&self, kind: FailureKind) -> bool {
        self.failures.iter().any(|f| f.kind == kind)
    }
    /// The one-line summary.
    pub fn summary(&self) -> String {
        let what = match (&self.origin, self.tree_size) {
            (Some(o), Some(n)) => format!("log {o} at size {n}"),
            (Some(o), None) => format!("log {o}"),
            _ => "log".to_owned(),
        };
        let counts = format!(
            "{} leaves, {} events checked, {} expired by retention, {} pending",
            self.leaves, self.events, self.expired, self.pending
        );
        if self.ok() {
            format!("verified: {what}: {counts}")
        } else {
            format!(
                "FAILED: {what}: {} failure(s); {counts}",
                self.failure_count
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_its_leaf_event_and_kind() {
        let f = Failure::at(
            FailureKind::DeletedEarly,
            17,
            Some("0190a000-0000-7000-8000-000000000011"),
            "deleted before its retention ended",
        );
        assert_eq!(
            f.to_string(),
            "leaf 17: event 0190a000-0000-7000-8000-000000000011: deleted before its retention ended (deleted_early)"
        );
        let g = Failure::new(FailureKind::RolledBack, "rolled back / truncated");
        assert_eq!(g.to_string(), "rolled back / truncated (rolled_back)");
    }

    #[test]
    fn the_list_is_capped_and_absorbing_keeps_the_counts() {
        let mut a = Report::new(2);
        for i in 0..5 {
            a.fail(Failure::at(FailureKind::ContentAltered, i, None, "x"));
        }
        assert_eq!((a.failures.len(), a.failure_count), (2, 5));
        let mut b = Report::new(3);
        b.fail(Failure::new(FailureKind::BadSignature, "y"));
        b.absorb(a);
        assert_eq!((b.failures.len(), b.failure_count), (3, 6));
        assert!(
            b.summary().starts_with("FAILED: log: 6 failure(s)"),
            "{}",
            b.summary()
        );
        assert!(Report::default().summary().starts_with("verified"));
    }
}
