//! The audit event model: what one recorded mutation looks like, on the wire and in Rust.
//!
//! No I/O here: types, the event type catalog, the JSON wire format, validation and a builder.
//! The producer validates before sending; the consumer decodes and validates again before
//! writing, so a malformed event can be dead-lettered with a reason that names the field.

pub mod builder;
pub mod catalog;
pub mod codec;
pub mod limits;
pub mod model;
pub mod prepared;
#[cfg(feature = "synth")]
pub mod synth;
pub mod time_format;
pub mod validate;

pub use builder::{new_event_id, AuditEventBuilder};
pub use catalog::{EventType, KnownEvent};
pub use codec::{decode, decode_with_defaults, DecodeError};
pub use model::{
    Actor, ActorType, AuditEvent, Context, Metadata, Outcome, OutcomeStatus, Payload, Target,
    DEFAULT_BUCKET, SCHEMA_VERSION,
};
pub use prepared::Prepared;
pub use validate::{Rule, ValidationError};
