//! SQL of the feed reads. Positions become per-partition conditions on
//! `(kafka_partition, kafka_offset)` that the `idx_feed_position` minmax index (migration 0009)
//! can use to skip granules; the filter and retention are the list's own
//! ([`crate::sql::conditions`]). No `FINAL`: copies of a re-emitted event are dropped by the
//! feed's dedup rule ([`super::page`]), not by merging.

use auditlog_store::events::DETAIL_PROJECTION;
use auditlog_store::feed::FeedPosition;

use crate::filter::Filter;
use crate::sql::{conditions, Param, Sql};

/// Settings of every feed read. On a cluster they send the read to the first replica of the
/// shard (the one inserts go to under the same setting) unless it lags more than 1 s, in which
/// case another replica answers rather than none (see docs/api.md, "Feed", for the caveat).
/// Harmless on one server.
pub const READ_SETTINGS: [(&str, &str); 3] = [
    ("load_balancing", "in_order"),
    ("max_replica_delay_for_distributed_queries", "1"),
    ("fallback_to_stale_replicas_for_distributed_queries", "1"),
];

/// The rows after `pos`: in a partition of the position, offsets above its last one (and, with
/// a `window`, at most that many above it); in any other partition, every row. Partitions
/// outside the position are written as ranges (`p < p0 OR p0 < p < p1 ...`) rather than
/// `NOT IN`, which the minmax index cannot decide on a granule spanning several partitions.
pub fn after(sql: &mut Sql, pos: &FeedPosition, window: Option<i64>) -> String {
    if pos.offsets.is_empty() {
        return "1".to_owned();
    }
    let mut or = Vec::new();
    let mut prev: Option<i32> = None;
    for (&p, &o) in &pos.offsets {
        let gap_from = prev.map(|q| i64::from(q) + 1);
        let gap_to = i64::from(p) - 1;
        match gap_from {
            None => or.push(format!(
                "kafka_partition <= {}",
                sql.bind("Int32", Param::Int(gap_to))
            )),
            Some(from) if from <= gap_to => {
                let a = sql.bind("Int32", Param::Int(from));
                let b = sql.bind("Int32", Param::Int(gap_to));
                or.push(format!("kafka_partition BETWEEN {a} AND {b}"));
            }
            Some(_) => {}
        }
        let pp = sql.bind("Int32", Param::Int(i64::from(p)));
        let oo = sql.bind("Int64", Param::Int(o));
        let upto = match window {
            Some(w) => {
                let end = sql.bind("Int64", Param::Int(o.saturating_add(w)));
                format!(" AND kafka_offset <= {end}")
            }
            None => String::new(),
        };
        or.push(format!(
            "(kafka_partition = {pp} AND kafka_offset > {oo}{upto})"
        ));
        prev = Some(p);
    }
    if let Some(last) = prev {
        let p = sql.bind("Int32", Param::Int(i64::from(last) + 1));
        or.push(format!("kafka_partition >= {p}"));
    }
    format!("({})", or.join(" OR "))
}

/// The rows at or before `pos` (already delivered).
fn delivered(sql: &mut Sql, pos: &FeedPosition) -> String {
    let or: Vec<String> = pos
        .offsets
        .iter()
        .map(|(&p, &o)| {
            let pp = sql.bind("Int32", Param::Int(i64::from(p)));
            let oo = sql.bind("Int64", Param::Int(o));
            format!("(kafka_partition = {pp} AND kafka_offset <= {oo})")
        })
        .collect();
    if or.is_empty() {
        "0".to_owned()
    } else {
        format!("({})", or.join(" OR "))
    }
}

/// The scan of a page, in ONE statement (one snapshot of the table): per partition with rows
/// after `pos` (within `window` offsets of it, for the partitions of the position), its
/// highest offset (any row, matching or not) and the `limit` first matching rows'
/// `(offset, time_ms, event_id)` in offset order. One snapshot matters: the highest offset is
/// where the page may move the position to, which is only safe for rows this same read
/// considered.
pub fn scan(ws: &str, f: &Filter, pos: &FeedPosition, limit: u32, window: Option<i64>) -> Sql {
    let mut sql = Sql::default();
    // `conditions` binds the workspace first, as `p0`.
    let matching = conditions(&mut sql, ws, f, None);
    let after = after(&mut sql, pos, window);
    sql.text = format!(
        "SELECT kafka_partition AS p, max(kafka_offset) AS last, \
         groupArraySortedIf({limit})((kafka_offset, toUnixTimestamp64Milli(time), toString(event_id)), {matching}) AS keys \
         FROM events WHERE workspace_id = {{p0:String}} AND {after} \
         GROUP BY p ORDER BY p"
    );
    sql
}

/// `(time, event_id) IN` the given keys, by the primary key.
fn keys_in(sql: &mut Sql, keys: &[(i64, String)]) -> String {
    let ts = sql.bind(
        "Array(Int64)",
        Param::Ints(keys.iter().map(|k| k.0).collect()),
    );
    let ids = sql.bind(
        "Array(String)",
        Param::Strs(keys.iter().map(|k| k.1.clone()).collect()),
    );
    format!(
        "(time, event_id) IN (SELECT fromUnixTimestamp64Milli(k.1, 'UTC'), toUUID(k.2) \
         FROM (SELECT arrayJoin(arrayZip({ts}, {ids})) AS k))"
    )
}

/// The full rows (payloads included) of a page, one per event: the matching rows of each
/// partition's offset range `(after, upto]` the page covers (exactly the rows of the scan's
/// keys: those offsets were all visible to it). By offsets, not by keys, so the minmax index
/// does the work (measured cheaper than `(time, event_id) IN` a set of 1,000 keys).
pub fn bodies(ws: &str, f: &Filter, ranges: &[(i32, Option<i64>, i64)]) -> Sql {
    let mut sql = Sql::default();
    let matching = conditions(&mut sql, ws, f, None);
    let or: Vec<String> = ranges
        .iter()
        .map(|&(p, after, upto)| {
            let pp = sql.bind("Int32", Param::Int(i64::from(p)));
            let hi = sql.bind("Int64", Param::Int(upto));
            let lo = match after {
                Some(a) => format!(" AND kafka_offset > {}", sql.bind("Int64", Param::Int(a))),
                None => String::new(),
            };
            format!("(kafka_partition = {pp}{lo} AND kafka_offset <= {hi})")
        })
        .collect();
    let ranges = if or.is_empty() {
        "0".to_owned()
    } else {
        format!("({})", or.join(" OR "))
    };
    sql.text = format!(
        "SELECT {DETAIL_PROJECTION} FROM events WHERE {matching} AND {ranges} \
         LIMIT 1 BY event_id"
    );
    sql
}

/// Which of the page's keys have a copy at or before `pos` (delivered already).
pub fn delivered_copies(ws: &str, keys: &[(i64, String)], pos: &FeedPosition) -> Sql {
    let mut sql = Sql::default();
    let w = sql.bind("String", Param::Str(ws.to_owned()));
    let k = keys_in(&mut sql, keys);
    let d = delivered(&mut sql, pos);
    sql.text = format!(
        "SELECT DISTINCT toString(event_id) AS id FROM events \
         WHERE workspace_id = {w} AND {k} AND {d}"
    );
    sql
}

/// Rows after `pos` matching `f`, and the `inserted_at` of the oldest of them.
pub fn lag(ws: &str, f: &Filter, pos: &FeedPosition) -> Sql {
    let mut sql = Sql::default();
    let matching = conditions(&mut sql, ws, f, None);
    let after = after(&mut sql, pos, None);
    sql.text = format!(
        "SELECT count() AS n, toUnixTimestamp64Milli(min(inserted_at)) AS oldest_ms \
         FROM events WHERE {matching} AND {after}"
    );
    sql
}

/// Per partition of `ws`, the highest offset stored before `before_ms` (`None`: any).
pub fn heads(ws: &str, before_ms: Option<i64>) -> Sql {
    let mut sql = Sql::default();
    let w = sql.bind("String", Param::Str(ws.to_owned()));
    let t = match before_ms {
        Some(ms) => {
            let p = sql.bind("Int64", Param::Int(ms));
            format!(" AND inserted_at < fromUnixTimestamp64Milli({p}, 'UTC')")
        }
        None => String::new(),
    };
    sql.text = format!(
        "SELECT kafka_partition AS p, max(kafka_offset) AS last FROM events \
         WHERE workspace_id = {w}{t} GROUP BY p ORDER BY p"
    );
    sql
}

/// Per watched workspace and partition, the highest offset among rows stored in the last
/// `window_s` seconds (the notifier's poll; `idx_inserted_at` skips older granules).
pub fn recent_heads(workspaces: &[String], window_s: u32) -> Sql {
    let mut sql = Sql::default();
    let w = sql.bind("Array(String)", Param::Strs(workspaces.to_vec()));
    let s = sql.bind("UInt32", Param::Int(i64::from(window_s)));
    sql.text = format!(
        "SELECT workspace_id AS ws, kafka_partition AS p, max(kafka_offset) AS last FROM events \
         WHERE workspace_id IN {w} AND inserted_at > now64(3, 'UTC') - toIntervalSecond({s}) \
         GROUP BY ws, p"
    );
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(pairs: &[(i32, i64)]) -> FeedPosition {
        FeedPosition {
            offsets: pairs.iter().copied().collect(),
        }
    }

    #[test]
    fn positions_become_ranges_the_index_can_decide() {
        let mut sql = Sql::default();
        assert_eq!(after(&mut sql, &FeedPosition::beginning(), None), "1");
        let mut sql = Sql::default();
        let text = after(&mut sql, &pos(&[(0, 10), (1, 5), (4, 7)]), None);
        assert!(!text.contains("NOT IN"), "{text}");
        // Before 0, between 1 and 4, after 4: ranges; the gap between 0 and 1 is empty.
        assert_eq!(
            text,
            "(kafka_partition <= {p0:Int32} OR (kafka_partition = {p1:Int32} AND kafka_offset > {p2:Int64}) \
             OR (kafka_partition = {p3:Int32} AND kafka_offset > {p4:Int64}) \
             OR kafka_partition BETWEEN {p5:Int32} AND {p6:Int32} \
             OR (kafka_partition = {p7:Int32} AND kafka_offset > {p8:Int64}) OR kafka_partition >= {p9:Int32})"
        );
        let values: Vec<Param> = sql.params.into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            values,
            [-1, 0, 10, 1, 5, 2, 3, 4, 7, 5].map(Param::Int).to_vec()
        );
        let mut sql = Sql::default();
        let text = after(&mut sql, &pos(&[(2, i64::MAX - 1)]), Some(100));
        assert_eq!(
            text,
            "(kafka_partition <= {p0:Int32} OR (kafka_partition = {p1:Int32} AND kafka_offset > {p2:Int64} \
             AND kafka_offset <= {p3:Int64}) OR kafka_partition >= {p4:Int32})"
        );
        assert_eq!(
            sql.params[3].1,
            Param::Int(i64::MAX),
            "the window end saturates"
        );
    }

    #[test]
    fn values_never_reach_the_text() {
        let f = Filter {
            actor_id: Some("x' OR 1=1 --".into()),
            ..Filter::default()
        };
        let keys = vec![(1, "x' OR 1=1 --".to_owned())];
        for sql in [
            scan("ws'", &f, &pos(&[(0, 1)]), 10, Some(40)),
            bodies("ws'", &f, &[(0, Some(1), 5), (1, None, 3)]),
            delivered_copies("ws'", &keys, &pos(&[(0, 1)])),
            lag("ws'", &f, &pos(&[])),
            heads("ws'", Some(5)),
            recent_heads(&["ws'".into()], 60),
        ] {
            assert!(!sql.text.contains("OR 1=1"), "{}", sql.text);
            assert!(!sql.text.contains("ws'"), "{}", sql.text);
        }
    }
}
