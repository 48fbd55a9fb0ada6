//! Audit events in the shapes security tools read: our own JSON (the detail body of
//! `GET /v1/events/{id}`), OCSF and Elastic ECS. The feed (`GET /v1/feed?format=`) and the
//! stream destinations render every event through [`render`]; docs/formats.md maps every
//! field. Payloads (`request`, `response`) are embedded as the JSON text stored, byte for byte.

use auditlog_event::AuditEvent;
use serde::{Deserialize, Serialize};

/// An output format.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Our event JSON plus `inserted_at` (the detail body).
    #[default]
    Json,
    /// OCSF 1.x (API Activity, Account Change, ...).
    Ocsf,
    /// Elastic Common Schema.
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
    // Skeleton: OCSF and ECS are filled in by the formats work (issue 17).
    let _ = (format, inserted_ms);
    serde_json::to_vec(event).map_err(|source| Error {
        format: format.as_str(),
        source,
    })
}
