//! Decode: message bytes to a row, or the reason the message is poison. Pure, no I/O.

use auditlog_event::DecodeError;

use auditlog_store::events::{EventRow, RowContext};

/// Why a message goes to the dead-letter topic instead of ClickHouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Short machine-readable code (`not_json`, `invalid_utf8`, `invalid_field`, `too_large`,
    /// `unknown_version`, `unknown_field`, `empty`, `rejected_by_clickhouse`).
    pub code: &'static str,
    /// Readable explanation.
    pub message: String,
}

impl DeadLetter {
    /// The reason for a message with no payload (a tombstone).
    pub fn empty() -> Self {
        Self {
            code: "empty",
            message: "message has no payload".into(),
        }
    }

    /// The reason for a row ClickHouse refused on its own (isolated by splitting its batch).
    pub fn rejected(message: impl Into<String>) -> Self {
        Self {
            code: "rejected_by_clickhouse",
            message: message.into(),
        }
    }
}

impl From<DecodeError> for DeadLetter {
    fn from(e: DecodeError) -> Self {
        // The event model reports another schema version as `unknown_version` whichever step
        // (parsing or validation) noticed it, as `auditlog emit` does.
        Self {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// Decodes one message payload into a row. `max_bytes` may only lower the event model's own
/// limit ([`auditlog_event::limits::MAX_EVENT_BYTES`]). The row's retention is the Free plan's,
/// a placeholder: the pipeline stamps it from the plans when the row's batch is written
/// ([`crate::retention::stamp`]).
pub fn decode(
    payload: Option<&[u8]>,
    max_bytes: usize,
    partition: i32,
    offset: i64,
) -> Result<EventRow, DeadLetter> {
    let bytes = payload.ok_or_else(DeadLetter::empty)?;
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            max: max_bytes,
            actual: bytes.len(),
        }
        .into());
    }
    let event = auditlog_event::decode(bytes)?;
    Ok(EventRow::from_event(
        event,
        RowContext {
            partition,
            offset,
            retention_days: auditlog_store::plans::FREE_DAYS,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_event::synth::{Synth, SynthConfig};

    fn good() -> (auditlog_event::AuditEvent, Vec<u8>) {
        let e = Synth::new(SynthConfig::default()).next_event();
        let b = e.to_json_bytes();
        (e, b)
    }

    fn code(payload: Option<&[u8]>) -> &'static str {
        decode(payload, 1 << 20, 0, 0).unwrap_err().code
    }

    #[test]
    fn a_valid_event_becomes_a_row_with_provenance_and_placeholder_retention() {
        let (e, bytes) = good();
        let row = decode(Some(&bytes), 1 << 20, 3, 42).unwrap();
        assert_eq!(row.event_id, e.event_id);
        assert_eq!(row.workspace_id, e.workspace_id);
        assert_eq!(row.event, e.event.as_str());
        assert_eq!(row.time, e.time.timestamp_millis());
        assert_eq!(row.target_ids.len(), e.targets.len());
        // Stamped from the plans when written (retention::stamp); the Free plan's until then.
        assert_eq!(row.retention_days, auditlog_store::plans::FREE_DAYS);
        assert_eq!((row.kafka_partition, row.kafka_offset), (3, 42));
        let targets: Vec<auditlog_event::Target> = serde_json::from_str(&row.targets).unwrap();
        assert_eq!(targets, e.targets);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&row.request).unwrap(),
            e.request.to_value()
        );
    }

    #[test]
    fn poison_is_classified() {
        assert_eq!(code(None), "empty");
        assert_eq!(code(Some(b"\xff\xfe{}")), "invalid_utf8");
        assert_eq!(code(Some(b"{not json")), "not_json");
        assert_eq!(code(Some(b"{}")), "invalid_field");
        let (_, bytes) = good();
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        // Another version: well formed (only validation notices), not a u16, not a number.
        for version in [serde_json::json!(2), 99.into(), 70_000.into(), "1".into()] {
            v["version"] = version;
            assert_eq!(
                code(Some(&serde_json::to_vec(&v).unwrap())),
                "unknown_version",
                "{}",
                v["version"]
            );
        }
        v["version"] = 1.into();
        v["workspace_id"] = "".into();
        assert_eq!(
            code(Some(&serde_json::to_vec(&v).unwrap())),
            "invalid_field"
        );
    }

    #[test]
    fn the_configured_size_limit_applies() {
        let (_, bytes) = good();
        let err = decode(Some(&bytes), 10, 0, 0).unwrap_err();
        assert_eq!(err.code, "too_large");
    }
}
