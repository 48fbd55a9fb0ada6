//! An event validated and serialized once: the bytes the producer publishes and the outbox
//! stores, with what the Kafka record carries besides its value.

use uuid::Uuid;

use crate::model::AuditEvent;
use crate::validate::ValidationError;

/// A valid event in its wire form. The producer publishes [`Prepared::json`] as the record
/// value with key [`Prepared::workspace_id`] and header `event_type`; the outbox stores the
/// same four fields, so a relayed event is byte for byte what `emit` would have sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The event's id (the consumer's deduplication key).
    pub event_id: Uuid,
    /// The record key.
    pub workspace_id: String,
    /// The `event_type` header (`key.create`, ...).
    pub event_type: String,
    /// The record value: the event's compact JSON ([`AuditEvent::to_json_bytes`]).
    pub json: Vec<u8>,
}

impl AuditEvent {
    /// Validates and serializes (once): what [`Prepared`] says, or the first broken rule.
    pub fn prepare(&self) -> Result<Prepared, ValidationError> {
        Ok(Prepared {
            event_id: self.event_id,
            workspace_id: self.workspace_id.clone(),
            event_type: self.event.as_str().to_owned(),
            json: self.to_validated_json_bytes()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, KnownEvent, Target};

    #[test]
    fn prepared_is_the_validated_wire_form() {
        let event = AuditEvent::builder("ws_1", KnownEvent::KeyCreate)
            .actor(Actor::user("user_1", "Ada"))
            .target(Target::new("key", "key_1", "prod"))
            .description("Ada created a key")
            .build()
            .unwrap();
        let p = event.prepare().unwrap();
        assert_eq!(p.event_id, event.event_id);
        assert_eq!(p.workspace_id, "ws_1");
        assert_eq!(p.event_type, "key.create");
        assert_eq!(p.json, event.to_json_bytes());
        let mut bad = event.clone();
        bad.workspace_id = String::new();
        assert_eq!(bad.prepare().unwrap_err().field, "workspace_id");
    }
}
