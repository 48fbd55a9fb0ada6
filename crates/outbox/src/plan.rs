//! What both databases compute the same way: the sequence numbers a write takes, and the
//! acknowledged prefix a finished claim deletes.

use std::collections::HashMap;

use auditlog_event::Prepared;

use crate::claim::OutboxRow;

/// The workspaces of `events`, sorted (the counter rows are locked in this order, so two
/// writers of the same workspaces cannot deadlock), with how many numbers each takes.
pub(crate) fn counts(events: &[Prepared]) -> (Vec<&str>, Vec<i64>) {
    let mut n: HashMap<&str, i64> = HashMap::new();
    for e in events {
        *n.entry(e.workspace_id.as_str()).or_default() += 1;
    }
    let mut pairs: Vec<(&str, i64)> = n.into_iter().collect();
    pairs.sort_unstable();
    pairs.into_iter().unzip()
}

/// The sequence number of each event, in order, given each workspace's new `last_seq` (after
/// it took its count): a workspace's events get `last - count + 1 ..= last` in input order.
/// A workspace missing from `last` (the database did not answer it) is `None`.
pub(crate) fn assign(events: &[Prepared], last: &HashMap<String, i64>) -> Option<Vec<i64>> {
    let (ws, n) = counts(events);
    let mut next: HashMap<&str, i64> = HashMap::with_capacity(ws.len());
    for (w, count) in ws.iter().zip(n) {
        next.insert(w, last.get(*w)? - count + 1);
    }
    events
        .iter()
        .map(|e| {
            let seq = next.get_mut(e.workspace_id.as_str())?;
            *seq += 1;
            Some(*seq - 1)
        })
        .collect()
}

/// One workspace's rows to delete: `seq` from `first` to `last`, both included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range {
    pub workspace_id: String,
    pub first: i64,
    pub last: i64,
}

/// Per workspace, the acknowledged rows before its first unacknowledged one (`delivered[i]`
/// for `rows[i]`; a missing entry counts as not delivered). `rows` are grouped by workspace in
/// sequence order (as a claim reads them).
pub(crate) fn acknowledged_prefixes(rows: &[OutboxRow], delivered: &[bool]) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    let mut failed: Option<&str> = None;
    for (i, row) in rows.iter().enumerate() {
        let ws = row.prepared.workspace_id.as_str();
        if failed == Some(ws) {
            continue;
        }
        failed = None;
        if !delivered.get(i).copied().unwrap_or(false) {
            failed = Some(ws);
            continue;
        }
        match out.last_mut() {
            Some(r) if r.workspace_id == ws => r.last = row.seq,
            _ => out.push(Range {
                workspace_id: ws.to_owned(),
                first: row.seq,
                last: row.seq,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(ws: &str) -> Prepared {
        Prepared {
            event_id: uuid::Uuid::now_v7(),
            workspace_id: ws.into(),
            event_type: "key.create".into(),
            json: b"{}".to_vec(),
        }
    }

    #[test]
    fn numbers_follow_input_order_per_workspace() {
        let events = [prepared("b"), prepared("a"), prepared("b"), prepared("b")];
        let (ws, n) = counts(&events);
        assert_eq!(ws, ["a", "b"]);
        assert_eq!(n, [1, 3]);
        let last = HashMap::from([("a".to_string(), 1), ("b".to_string(), 10)]);
        assert_eq!(assign(&events, &last), Some(vec![8, 1, 9, 10]));
        assert_eq!(assign(&events, &HashMap::from([("a".into(), 1)])), None);
    }

    #[test]
    fn only_the_prefix_before_a_failure_is_deleted() {
        let rows: Vec<OutboxRow> = [("a", 1), ("a", 2), ("a", 3), ("b", 7), ("b", 8), ("c", 1)]
            .iter()
            .map(|(ws, seq)| OutboxRow {
                seq: *seq,
                prepared: prepared(ws),
            })
            .collect();
        let r = |w: &str, first, last| Range {
            workspace_id: w.into(),
            first,
            last,
        };
        // a: 1 ok, 2 failed, 3 ok (kept: it goes out again after 2). b: all. c: missing entry.
        assert_eq!(
            acknowledged_prefixes(&rows, &[true, false, true, true, true]),
            [r("a", 1, 1), r("b", 7, 8)]
        );
        assert_eq!(acknowledged_prefixes(&rows, &[false; 6]), []);
        assert_eq!(
            acknowledged_prefixes(&rows, &[true; 6]),
            [r("a", 1, 3), r("b", 7, 8), r("c", 1, 1)]
        );
    }
}
