//! The `events` table, from Rust: the one place that knows its columns.
//!
//! - [`row`]: [`EventRow`], the row the consumer writes (every column but `inserted_at`),
//!   flattened from an [`AuditEvent`](auditlog_event::AuditEvent), and [`insert`], the one
//!   INSERT that writes rows (the consumer's batches, and the seeds of the query tests).
//! - [`stored`]: [`StoredEvent`], a row as the query API reads it back, the projections that
//!   read it ([`LIST_PROJECTION`], [`DETAIL_PROJECTION`]), its mapping back to an `AuditEvent`,
//!   and the export's CSV columns ([`CSV_COLUMNS`], [`StoredEvent::csv_record`]).
//!
//! Payloads (`request`, `response`) are JSON text, stored and returned byte for byte: never
//! through a `serde_json::Value`, which would round `18446744073709551617` and refuse `1e400`.
//! Column meanings: ARCHITECTURE.md ("Schema"); the DDL: `deploy/clickhouse/migrations`.
//!
//! ```
//! use auditlog_event::{Actor, AuditEvent, Payload, Target};
//! use auditlog_store::events::{EventRow, RowContext};
//!
//! let event = AuditEvent::builder("ws_1", "key.create")
//!     .actor(Actor::user("user_1", "Ada"))
//!     .target(Target::new("key", "key_1", "prod"))
//!     .description("Ada created a key")
//!     .request(Payload::from_json(r#"{"big":18446744073709551617}"#).unwrap())
//!     .build()
//!     .unwrap();
//! let ctx = RowContext { partition: 0, offset: 7, retention_days: 7 };
//! let row = EventRow::from_event(event, ctx);
//! assert_eq!(row.request, r#"{"big":18446744073709551617}"#);
//! ```

pub mod row;
pub mod stored;

pub use row::{insert, EventRow, RowContext};
pub use stored::{StoredEvent, CSV_COLUMNS, DETAIL_PROJECTION, LIST_PROJECTION};

/// The table's name.
pub const TABLE: &str = "events";
