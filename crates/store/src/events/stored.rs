//! The row read: an `events` row as the query API reads it back (through one of the two
//! projections below), its mapping back to the wire-format event, and the export's CSV columns.

use auditlog_event::{
    Actor, ActorType, AuditEvent, Context, EventType, Metadata, Outcome, OutcomeStatus, Payload,
    Target,
};
use chrono::{TimeZone, Utc};
use clickhouse::Row;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// One stored event as read (payloads empty in list rows). Its fields are the aliases of
/// [`LIST_PROJECTION`] and [`DETAIL_PROJECTION`], in their order.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct StoredEvent {
    /// `event_id` as text.
    pub id: String,
    /// Tenant.
    pub workspace_id: String,
    /// Bucket.
    pub bucket: String,
    /// Event type.
    pub event: String,
    /// Epoch milliseconds.
    pub time_ms: i64,
    /// `user` | `root_key` | `system`.
    pub actor_type: String,
    /// Actor id.
    pub actor_id: String,
    /// Actor name.
    pub actor_name: String,
    /// Actor metadata JSON ("" = none).
    pub actor_meta: String,
    /// Targets JSON array.
    pub targets: String,
    /// Description.
    pub description: String,
    /// Client IP.
    pub remote_ip: String,
    /// User agent.
    pub user_agent: String,
    /// Location ("" = none).
    pub location: String,
    /// `success` | `failure`.
    pub outcome: String,
    /// Failure reason ("" = none).
    pub failure_reason: String,
    /// Correlation id ("" = none).
    pub correlation_id: String,
    /// Wire version.
    pub version: u16,
    /// Request payload JSON ("" in list rows).
    pub request: String,
    /// Response payload JSON ("" in list rows).
    pub response: String,
    /// When the row was written, epoch ms (0 in list rows).
    pub inserted_ms: i64,
}

/// The columns both projections read, up to `version`.
/// No alias may reuse a column name: ClickHouse would resolve the name in `WHERE` and
/// `ORDER BY` to the alias.
macro_rules! common_columns {
    () => {
        "toString(event_id) AS id, workspace_id, bucket, event, \
         toUnixTimestamp64Milli(time) AS time_ms, actor_type, actor_id, actor_name, actor_meta, \
         targets, description, remote_ip, user_agent, location, outcome, failure_reason, \
         correlation_id, version"
    };
}

/// Columns of a list row: the payloads left out (they can be large), read as `''`.
pub const LIST_PROJECTION: &str = concat!(
    common_columns!(),
    ", '' AS request, '' AS response, toInt64(0) AS inserted_ms"
);

/// Columns of a full row (detail and export): with payloads and `inserted_at`.
pub const DETAIL_PROJECTION: &str = concat!(
    common_columns!(),
    ", request, response, toUnixTimestamp64Milli(inserted_at) AS inserted_ms"
);

/// The export's CSV header; [`StoredEvent::csv_record`] gives the cells in this order.
pub const CSV_COLUMNS: [&str; 17] = [
    "event_id",
    "time",
    "workspace_id",
    "bucket",
    "event",
    "actor_type",
    "actor_id",
    "actor_name",
    "targets",
    "description",
    "remote_ip",
    "user_agent",
    "outcome",
    "failure_reason",
    "correlation_id",
    "request",
    "response",
];

/// A stored payload column back as JSON: empty is `null`, text that is not JSON (written by
/// hand into the table) a JSON string.
fn payload(text: &str) -> Payload {
    if text.is_empty() {
        return Payload::null();
    }
    Payload::from_json(text).unwrap_or_else(|_| Value::String(text.to_owned()).into())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl StoredEvent {
    /// The event's id (nil if the stored text is not a UUID, which ClickHouse never returns).
    pub fn event_id(&self) -> Uuid {
        Uuid::parse_str(&self.id).unwrap_or_default()
    }

    /// The event as one NDJSON export line carries it (without the line break): the wire JSON
    /// of [`StoredEvent::to_event`], payloads byte for byte, except that a raw CR or LF (which
    /// can only be JSON whitespace between a payload's tokens: the serializer escapes them
    /// inside strings) becomes a space, so the event stays on one line. The export and the
    /// log's leaves ([`crate::log::leaf_of`]) both use it: what a verifier hashes is what the
    /// export wrote.
    pub fn export_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut buf = serde_json::to_vec(&self.to_event())?;
        for b in &mut buf {
            if matches!(*b, b'\n' | b'\r') {
                *b = b' ';
            }
        }
        Ok(buf)
    }

    /// The wire-format event. The payloads are the text stored, byte for byte.
    pub fn to_event(&self) -> AuditEvent {
        let meta: Option<Metadata> = serde_json::from_str(&self.actor_meta).ok();
        let targets: Vec<Target> = serde_json::from_str(&self.targets).unwrap_or_default();
        AuditEvent {
            event_id: self.event_id(),
            workspace_id: self.workspace_id.clone(),
            bucket: self.bucket.clone(),
            event: EventType::new(self.event.clone()),
            time: Utc
                .timestamp_millis_opt(self.time_ms)
                .single()
                .unwrap_or_default(),
            actor: Actor {
                kind: ActorType::parse(&self.actor_type).unwrap_or(ActorType::System),
                id: self.actor_id.clone(),
                name: self.actor_name.clone(),
                meta,
            },
            targets,
            description: self.description.clone(),
            context: Context {
                remote_ip: self.remote_ip.clone(),
                user_agent: self.user_agent.clone(),
                location: non_empty(&self.location),
            },
            request: payload(&self.request),
            response: payload(&self.response),
            outcome: Outcome {
                status: if self.outcome == "failure" {
                    OutcomeStatus::Failure
                } else {
                    OutcomeStatus::Success
                },
                reason: non_empty(&self.failure_reason),
            },
            correlation_id: non_empty(&self.correlation_id),
            version: self.version,
        }
    }

    /// The CSV cells of this row, in [`CSV_COLUMNS`] order, with `time` already formatted by
    /// the caller. Payloads and targets are the JSON text stored.
    pub fn csv_record<'a>(&'a self, time: &'a str) -> [&'a str; CSV_COLUMNS.len()] {
        [
            &self.id,
            time,
            &self.workspace_id,
            &self.bucket,
            &self.event,
            &self.actor_type,
            &self.actor_id,
            &self.actor_name,
            &self.targets,
            &self.description,
            &self.remote_ip,
            &self.user_agent,
            &self.outcome,
            &self.failure_reason,
            &self.correlation_id,
            &self.request,
            &self.response,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventRow, RowContext};
    use auditlog_event::KnownEvent;
    use serde_json::json;

    /// Events using every optional field, and none of them (not even a target).
    fn events() -> Vec<AuditEvent> {
        let meta = |v: Value| v.as_object().cloned().unwrap_or_default();
        let full = AuditEvent::builder("ws_full", KnownEvent::KeyCreate)
            .bucket("billing")
            .actor(Actor::user("user_7", "Alice Chen").with_meta(meta(json!({"role": "admin"}))))
            .target(Target::new("api", "api_1", "payments"))
            .target(Target::new("key", "key_2", "prod").with_meta(meta(json!({"n": 1.50}))))
            .description("Alice Chen created key 'prod'")
            .remote_ip("203.0.113.7")
            .user_agent("Mozilla/5.0")
            .location("Berlin")
            .request(json!({"name": "prod", "apiId": "api_1"}))
            .response(json!({"keyId": "key_2"}))
            .correlation_id("req_1")
            .failure("permission denied")
            .build()
            .unwrap();
        let bare = AuditEvent::builder("ws_bare", "custom.thing")
            .actor(Actor::root_key("rk_1", "deploy"))
            .description("something happened")
            .build_unchecked();
        vec![full, bare]
    }

    /// What [`DETAIL_PROJECTION`] reads from a written row (ClickHouse's side, in Rust).
    fn read_back(r: &EventRow, inserted_ms: i64) -> StoredEvent {
        StoredEvent {
            id: r.event_id.to_string(),
            workspace_id: r.workspace_id.clone(),
            bucket: r.bucket.clone(),
            event: r.event.clone(),
            time_ms: r.time,
            actor_type: r.actor_type.clone(),
            actor_id: r.actor_id.clone(),
            actor_name: r.actor_name.clone(),
            actor_meta: r.actor_meta.clone(),
            targets: r.targets.clone(),
            description: r.description.clone(),
            remote_ip: r.remote_ip.clone(),
            user_agent: r.user_agent.clone(),
            location: r.location.clone(),
            outcome: r.outcome.clone(),
            failure_reason: r.failure_reason.clone(),
            correlation_id: r.correlation_id.clone(),
            version: r.version,
            request: r.request.clone(),
            response: r.response.clone(),
            inserted_ms,
        }
    }

    const CTX: RowContext = RowContext {
        partition: 3,
        offset: 42,
        retention_days: 7,
    };

    fn some_row() -> StoredEvent {
        read_back(&EventRow::from_event(events().remove(0), CTX), 0)
    }

    #[test]
    fn an_event_written_and_read_back_is_the_same_event() {
        for e in events() {
            let row = EventRow::from_event(e.clone(), CTX);
            assert_eq!(
                (row.kafka_partition, row.kafka_offset, row.retention_days),
                (3, 42, 7)
            );
            assert_eq!(read_back(&row, 1).to_event(), e);
        }
    }

    #[test]
    fn payloads_stay_byte_for_byte() {
        let exact = include_str!("../../../event/tests/exact-payloads.txt");
        for text in exact.lines().filter(|l| !l.trim().is_empty()) {
            let mut e = events().remove(0);
            e.request = Payload::from_json(text).unwrap();
            e.response = Payload::from_json(text).unwrap();
            let row = EventRow::from_event(e, CTX);
            assert_eq!((row.request.as_str(), row.response.as_str()), (text, text));
            let back = read_back(&row, 1).to_event();
            assert_eq!(back.request.as_json(), text);
            assert_eq!(back.response.as_json(), text);
        }
    }

    #[test]
    fn empty_and_hand_written_payloads_read_as_json() {
        let mut s = some_row();
        s.request = String::new();
        s.response = "not json".into();
        let e = s.to_event();
        assert!(e.request.is_null());
        assert_eq!(e.response.as_json(), r#""not json""#);
    }

    #[test]
    fn projections_name_every_field_in_order() {
        // RowBinary is read by position and the client checks the names: both projections'
        // aliases must be the struct's fields, in order.
        for projection in [LIST_PROJECTION, DETAIL_PROJECTION] {
            let names: Vec<&str> = projection
                .split(", ")
                .map(|c| c.rsplit(' ').next().unwrap_or(c))
                .collect();
            assert_eq!(names, StoredEvent::COLUMN_NAMES, "{projection}");
        }
    }

    #[test]
    fn csv_cells_follow_the_header() {
        let s = some_row();
        for (name, cell) in CSV_COLUMNS.iter().zip(s.csv_record("T")) {
            let want = match *name {
                "event_id" => s.id.as_str(),
                "time" => "T",
                "workspace_id" => &s.workspace_id,
                "bucket" => &s.bucket,
                "event" => &s.event,
                "actor_type" => &s.actor_type,
                "actor_id" => &s.actor_id,
                "actor_name" => &s.actor_name,
                "targets" => &s.targets,
                "description" => &s.description,
                "remote_ip" => &s.remote_ip,
                "user_agent" => &s.user_agent,
                "outcome" => &s.outcome,
                "failure_reason" => &s.failure_reason,
                "correlation_id" => &s.correlation_id,
                "request" => &s.request,
                "response" => &s.response,
                other => panic!("unknown CSV column {other}"),
            };
            assert_eq!(cell, want, "{name}");
        }
    }
}
