//! `json`: the event's wire JSON plus `inserted_at`, exactly the body of
//! `GET /v1/events/{id}` (the API's detail handler renders through here too).

use auditlog_event::AuditEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The detail body: the wire fields, flattened, then `inserted_at` (RFC 3339 UTC, ms).
#[derive(Serialize)]
struct Detail<'a> {
    #[serde(flatten)]
    event: &'a AuditEvent,
    #[serde(with = "auditlog_event::time_format")]
    inserted_at: DateTime<Utc>,
}

/// The event and the time it was stored (epoch ms) as the detail document.
pub(crate) fn document(event: &AuditEvent, inserted_ms: i64) -> impl Serialize + '_ {
    Detail {
        event,
        inserted_at: crate::timestamp(inserted_ms),
    }
}
