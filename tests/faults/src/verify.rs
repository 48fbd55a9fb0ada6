//! Accounting: what ClickHouse holds compared with what the producers saw acknowledged.
//!
//! Content is compared through a [`Fingerprint`]: a SHA-256 over every stored field of the
//! event in a canonical form (JSON payloads re-serialized), computed from the event the
//! producer sent and from the row ClickHouse returns.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use auditlog_event::AuditEvent;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use auditlog_store::events::EventRow;

use crate::load::Ledger;

/// SHA-256 of an event's stored content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// All 32 bytes as hex (how producer processes report it).
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// The inverse of [`Fingerprint::to_hex`].
    pub fn from_hex(text: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(text)?;
        let array = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| anyhow::anyhow!("a fingerprint is 32 bytes, not {}", bytes.len()))?;
        Ok(Self(array))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

/// JSON text in one canonical form ("" and "null" are both null).
fn canonical(text: &str) -> String {
    if text.is_empty() {
        return "null".into();
    }
    serde_json::from_str::<Value>(text)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| text.to_string())
}

fn hash_fields(fields: &[&str]) -> Fingerprint {
    let mut h = Sha256::new();
    for f in fields {
        h.update(f.as_bytes());
        h.update([0x1f]);
    }
    Fingerprint(h.finalize().into())
}

impl Fingerprint {
    /// From the event a producer sent.
    pub fn of_event(e: &AuditEvent) -> Self {
        let meta = e
            .actor
            .meta
            .as_ref()
            .map(|m| Value::Object(m.clone()).to_string())
            .unwrap_or_default();
        let join = |f: &dyn Fn(&auditlog_event::Target) -> &str| {
            e.targets.iter().map(f).collect::<Vec<_>>().join("\x1e")
        };
        hash_fields(&[
            &e.event_id.to_string(),
            &e.workspace_id,
            &e.bucket,
            e.event.as_str(),
            &e.time.timestamp_millis().to_string(),
            e.actor.kind.as_str(),
            &e.actor.id,
            &e.actor.name,
            &canonical(&meta),
            &join(&|t| t.kind.as_str()),
            &join(&|t| t.id.as_str()),
            &join(&|t| t.name.as_str()),
            &canonical(&serde_json::to_string(&e.targets).unwrap_or_default()),
            &e.description,
            &e.context.remote_ip,
            &e.context.user_agent,
            e.context.location.as_deref().unwrap_or(""),
            &e.request.to_string(),
            &e.response.to_string(),
            e.outcome.status.as_str(),
            e.outcome.reason.as_deref().unwrap_or(""),
            e.correlation_id.as_deref().unwrap_or(""),
            &e.version.to_string(),
        ])
    }

    /// From a stored row.
    pub fn of_row(r: &EventRow) -> Self {
        hash_fields(&[
            &r.event_id.to_string(),
            &r.workspace_id,
            &r.bucket,
            &r.event,
            &r.time.to_string(),
            &r.actor_type,
            &r.actor_id,
            &r.actor_name,
            &canonical(&r.actor_meta),
            &r.target_types.join("\x1e"),
            &r.target_ids.join("\x1e"),
            &r.target_names.join("\x1e"),
            &canonical(&r.targets),
            &r.description,
            &r.remote_ip,
            &r.user_agent,
            &r.location,
            &canonical(&r.request),
            &canonical(&r.response),
            &r.outcome,
            &r.failure_reason,
            &r.correlation_id,
            &r.version.to_string(),
        ])
    }
}

/// Emit-to-insert latency of each row: `inserted_at` is set by ClickHouse when the row is
/// written, `time` is the emit moment.
const LATENCY_SQL: &str = "SELECT event_id, \
    toUnixTimestamp64Milli(inserted_at) - toUnixTimestamp64Milli(time) AS latency_ms FROM events";

#[derive(Debug, clickhouse::Row, Deserialize)]
struct LatencyRow {
    #[serde(with = "clickhouse::serde::uuid")]
    event_id: Uuid,
    latency_ms: i64,
}

/// Waits until ClickHouse holds at least `expected` distinct event ids and the count has
/// stopped moving for 3 s; gives up after `timeout`, or when the count has not moved for `stall`
/// (the pipeline is stuck: waiting longer only makes the suite slower). Returns how long it waited.
pub async fn drain(
    client: &clickhouse::Client,
    expected: u64,
    timeout: Duration,
    stall: Duration,
) -> Duration {
    let start = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    while start.elapsed() < timeout {
        let n = client
            .query("SELECT uniqExact(event_id) FROM events")
            .fetch_one::<u64>()
            .await
            .unwrap_or(0);
        if n != last.0 {
            last = (n, Instant::now());
        }
        // Everything acknowledged is in, and nothing more arrived for 3 s (late duplicates).
        if n >= expected && last.1.elapsed() >= Duration::from_secs(3) {
            break;
        }
        if n < expected && last.1.elapsed() >= stall {
            tracing::warn!(
                "no new rows for {stall:?} with {n} of {expected} stored; giving up waiting"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    start.elapsed()
}

/// The comparison of one scenario's ledger with the table.
#[derive(Debug, Default)]
pub struct Accounting {
    pub produced: u64,
    pub acked: u64,
    pub failed_emits: u64,
    /// Rows without FINAL.
    pub rows_raw: u64,
    /// Distinct event ids without FINAL.
    pub distinct_raw: u64,
    /// Rows with FINAL.
    pub rows_final: u64,
    /// Distinct event ids with FINAL.
    pub distinct_final: u64,
    /// Acknowledged events found (at least once).
    pub stored: u64,
    /// Extra rows for one event id (without FINAL).
    pub duplicated: u64,
    /// Of those, extra rows at the same (partition, offset): the consumer wrote a message twice.
    pub duplicated_same_offset: u64,
    /// Extra rows visible with FINAL.
    pub duplicated_final: u64,
    /// Acknowledged events missing.
    pub lost: u64,
    /// Acknowledged events stored with other content.
    pub mismatched: u64,
    /// Events whose emit failed but that were stored (allowed: the ack was lost, not the event).
    pub stored_unacked: u64,
    /// Rows nobody produced.
    pub unknown: u64,
    /// Emit-to-insert latency of each acknowledged event, ms, with its emit time (ms).
    pub latencies: Vec<(i64, i64)>,
    /// Human-readable details of the first problems.
    pub problems: Vec<String>,
}

impl Accounting {
    /// True when nothing was lost, duplicated or altered.
    pub fn exact(&self) -> bool {
        self.lost == 0
            && self.duplicated_same_offset == 0
            && self.duplicated_final == 0
            && self.mismatched == 0
            && self.unknown == 0
            && self.rows_final == self.distinct_final
    }
}

/// Compares the ledger with the `events` table.
pub async fn account(client: &clickhouse::Client, ledger: &Ledger) -> Result<Accounting> {
    let (rows_final, distinct_final) = client
        .query("SELECT count(), uniqExact(event_id) FROM events FINAL")
        .fetch_one::<(u64, u64)>()
        .await
        .context("count rows with FINAL")?;
    let mut latency: HashMap<Uuid, i64> = HashMap::new();
    let mut cursor = client
        .query(LATENCY_SQL)
        .fetch::<LatencyRow>()
        .context("read latencies")?;
    while let Some(r) = cursor.next().await.context("read latencies")? {
        latency.entry(r.event_id).or_insert(r.latency_ms);
    }
    let mut cursor = client
        .query("SELECT ?fields FROM events")
        .fetch::<EventRow>()
        .context("read rows")?;
    let mut by_id: HashMap<Uuid, Vec<(i32, i64, Fingerprint, i64)>> = HashMap::new();
    let mut rows_raw = 0u64;
    while let Some(row) = cursor.next().await.context("read rows")? {
        rows_raw += 1;
        let fp = Fingerprint::of_row(&row);
        let lat = latency.get(&row.event_id).copied().unwrap_or(0);
        by_id.entry(row.event_id).or_default().push((
            row.kafka_partition,
            row.kafka_offset,
            fp,
            lat,
        ));
    }
    let mut a = Accounting {
        produced: ledger.produced,
        acked: ledger.acked.len() as u64,
        failed_emits: ledger.failed.len() as u64,
        rows_raw,
        distinct_raw: by_id.len() as u64,
        rows_final,
        distinct_final,
        ..Accounting::default()
    };
    let mut lost = Vec::new();
    let mut dups = Vec::new();
    let mut mismatched = Vec::new();
    for (id, acked) in &ledger.acked {
        let Some(stored) = by_id.get(id) else {
            lost.push((
                acked.partition,
                acked.offset,
                *id,
                acked.workspace_id.clone(),
            ));
            continue;
        };
        a.stored += 1;
        a.latencies.push((acked.time_ms, stored[0].3));
        if stored.len() > 1 {
            let extra = stored.len() as u64 - 1;
            a.duplicated += extra;
            let mut positions: Vec<(i32, i64)> = stored.iter().map(|s| (s.0, s.1)).collect();
            positions.sort_unstable();
            positions.dedup();
            a.duplicated_same_offset += stored.len() as u64 - positions.len() as u64;
            dups.push((
                stored[0].0,
                stored[0].1,
                *id,
                stored.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
            ));
        }
        if let Some(bad) = stored.iter().find(|s| s.2 != acked.fingerprint) {
            mismatched.push((bad.0, bad.1, *id, acked.fingerprint, bad.2));
        }
    }
    a.duplicated_final = rows_final.saturating_sub(distinct_final);
    a.lost = lost.len() as u64;
    a.mismatched = mismatched.len() as u64;
    for id in by_id.keys() {
        if !ledger.acked.contains_key(id) {
            if ledger.failed.contains_key(id) {
                a.stored_unacked += 1;
            } else {
                a.unknown += 1;
                if a.problems.len() < 10 {
                    a.problems
                        .push(format!("unknown row: event {id} was never produced"));
                }
            }
        }
    }
    lost.sort_unstable();
    dups.sort_unstable_by_key(|d| (d.0, d.1));
    mismatched.sort_unstable_by_key(|m| (m.0, m.1));
    for (p, o, id, ws) in lost.iter().take(10) {
        a.problems.push(format!(
            "lost: event {id} (workspace {ws}) acknowledged at partition {p} offset {o}, not in ClickHouse"
        ));
    }
    for (_, _, id, positions) in dups.iter().take(10) {
        let mut s = String::new();
        for (p, o) in positions {
            let _ = write!(s, " p{p}@{o}");
        }
        a.problems.push(format!(
            "duplicated: event {id} stored {} times:{s}",
            positions.len()
        ));
    }
    for (p, o, id, want, got) in mismatched.iter().take(10) {
        a.problems.push(format!(
            "altered: event {id} at partition {p} offset {o}: content {got}, producer sent {want}"
        ));
    }
    a.latencies.sort_unstable();
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_event::synth::{Synth, SynthConfig};
    use auditlog_store::events::RowContext;

    fn row_of(e: &AuditEvent) -> EventRow {
        EventRow::from_event(
            e.clone(),
            RowContext {
                partition: 1,
                offset: 2,
                retention_days: 7,
            },
        )
    }

    #[test]
    fn fingerprint_of_the_stored_row_equals_the_events() {
        for e in Synth::new(SynthConfig::default()).take(500) {
            assert_eq!(
                Fingerprint::of_event(&e),
                Fingerprint::of_row(&row_of(&e)),
                "{e:?}"
            );
        }
    }

    #[test]
    fn fingerprint_sees_a_changed_field() {
        let e = Synth::new(SynthConfig::default()).next_event();
        let mut row = row_of(&e);
        row.description.push('!');
        assert_ne!(Fingerprint::of_event(&e), Fingerprint::of_row(&row));
        let mut row = row_of(&e);
        row.request = "{}".into();
        assert_ne!(Fingerprint::of_event(&e), Fingerprint::of_row(&row));
        let mut row = row_of(&e);
        row.time += 1;
        assert_ne!(Fingerprint::of_event(&e), Fingerprint::of_row(&row));
    }
}
