//! Audit events in the shapes security tools read: our own JSON (the detail body of
//! `GET /v1/events/{id}`), OCSF 1.3 and Elastic ECS 8. The feed (`GET /v1/feed?format=`) and
//! the stream destinations render every event through [`render`]; docs/formats.md maps every
//! field. Payloads (`request`, `response`) are embedded as the JSON text stored, byte for byte:
//! every format is built from borrowing serde structs, never through a `serde_json::Value`
//! (which would round `18446744073709551617` and refuse `1e400`).
//!
//! ```
//! use auditlog_event::{AuditEvent, Target};
//! use auditlog_formats::{render, Format};
//!
//! let event = AuditEvent::builder("ws_1", "key.create")
//!     .target(Target::new("key", "key_1", "prod"))
//!     .description("created a key")
//!     .build()
//!     .unwrap();
//! let ocsf = render(Format::Ocsf, &event, 1_764_000_000_000).unwrap();
//! let text = String::from_utf8(ocsf).unwrap();
//! assert!(text.contains(r#""class_uid":6003"#), "{text}");
//! ```

pub mod ecs;
mod json;
pub mod mapping;
pub mod ocsf;

use auditlog_event::AuditEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use mapping::{Mapping, OcsfClass, Verb};

/// An output format.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Our event JSON plus `inserted_at` (the detail body).
    #[default]
    Json,
    /// OCSF 1.3 (API Activity, Account Change).
    Ocsf,
    /// Elastic Common Schema 8.
    Ecs,
}

impl Format {
    /// Every format, in documentation order.
    pub const ALL: [Format; 3] = [Format::Json, Format::Ocsf, Format::Ecs];

    /// The parameter value (`json`, `ocsf`, `ecs`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ocsf => "ocsf",
            Format::Ecs => "ecs",
        }
    }

    /// From the parameter value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A rendering failure (serialization of a field; not expected for validated events).
#[derive(Debug, thiserror::Error)]
#[error("rendering an event as {format}: {source}")]
pub struct Error {
    format: &'static str,
    #[source]
    source: serde_json::Error,
}

/// One event (stored at `inserted_ms`, epoch milliseconds) as one JSON document in `format`.
pub fn render(format: Format, event: &AuditEvent, inserted_ms: i64) -> Result<Vec<u8>, Error> {
    render_as(format, event, inserted_ms, false)
}

/// [`render`], indented for people (docs, debugging); payloads stay as stored.
pub fn render_pretty(
    format: Format,
    event: &AuditEvent,
    inserted_ms: i64,
) -> Result<Vec<u8>, Error> {
    render_as(format, event, inserted_ms, true)
}

fn render_as(
    format: Format,
    event: &AuditEvent,
    inserted_ms: i64,
    pretty: bool,
) -> Result<Vec<u8>, Error> {
    let out = match format {
        Format::Json => encode(&json::document(event, inserted_ms), pretty),
        Format::Ocsf => encode(&ocsf::document(event, inserted_ms), pretty),
        Format::Ecs => encode(&ecs::document(event, inserted_ms), pretty),
    };
    out.map_err(|source| Error {
        format: format.as_str(),
        source,
    })
}

/// A document as compact or indented JSON bytes.
fn encode<T: Serialize>(doc: &T, pretty: bool) -> serde_json::Result<Vec<u8>> {
    if pretty {
        serde_json::to_vec_pretty(doc)
    } else {
        serde_json::to_vec(doc)
    }
}

/// Epoch milliseconds as a timestamp (the epoch itself for a value out of range, which a
/// ClickHouse `DateTime64(3)` never holds).
fn timestamp(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
