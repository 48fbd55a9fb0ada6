//! A builder that makes correct events easy to write at the call site:
//!
//! ```
//! use auditlog_event::{Actor, AuditEvent, KnownEvent, Target};
//! use serde_json::json;
//!
//! let event = AuditEvent::builder("ws_3f9a2c", KnownEvent::KeyCreate)
//!     .actor(Actor::user("user_7h2k", "Alice Chen"))
//!     .target(Target::new("api", "api_91ab", "payments"))
//!     .target(Target::new("key", "key_2c8d", "prod-billing"))
//!     .description("Alice Chen created key 'prod-billing' in API 'payments'")
//!     .remote_ip("203.0.113.7")
//!     .user_agent("Mozilla/5.0")
//!     .request(json!({ "name": "prod-billing", "apiId": "api_91ab" }))
//!     .response(json!({ "keyId": "key_2c8d" }))
//!     .build()
//!     .unwrap();
//! assert_eq!(event.event.as_str(), "key.create");
//! assert_eq!(event.event_id.get_version_num(), 7);
//! ```

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::catalog::EventType;
use crate::model::{
    Actor, ActorType, AuditEvent, Context, Metadata, Outcome, Payload, Target, DEFAULT_BUCKET,
    SCHEMA_VERSION,
};
use crate::time_format::truncate_to_millis;
use crate::validate::ValidationError;

/// Builds an [`AuditEvent`]; see the module docs. `build` validates.
#[derive(Debug, Clone)]
pub struct AuditEventBuilder {
    event: AuditEvent,
    event_id: Option<Uuid>,
    time: Option<DateTime<Utc>>,
}

impl AuditEvent {
    /// Starts an event of type `event` in `workspace_id`. Defaults: a new UUIDv7 `event_id`,
    /// `time` = now, bucket [`DEFAULT_BUCKET`], outcome success, `version` [`SCHEMA_VERSION`],
    /// actor `system`/`auditlog` until [`AuditEventBuilder::actor`] sets one.
    pub fn builder(
        workspace_id: impl Into<String>,
        event: impl Into<EventType>,
    ) -> AuditEventBuilder {
        AuditEventBuilder {
            event: AuditEvent {
                event_id: Uuid::nil(),
                workspace_id: workspace_id.into(),
                bucket: DEFAULT_BUCKET.to_owned(),
                event: event.into(),
                time: DateTime::<Utc>::UNIX_EPOCH,
                actor: Actor::system("auditlog"),
                targets: Vec::new(),
                description: String::new(),
                context: Context::default(),
                request: Payload::null(),
                response: Payload::null(),
                outcome: Outcome::success(),
                correlation_id: None,
                version: SCHEMA_VERSION,
            },
            event_id: None,
            time: None,
        }
    }
}

impl AuditEventBuilder {
    /// Sets the idempotency key (default: a new UUIDv7).
    pub fn event_id(mut self, id: Uuid) -> Self {
        self.event_id = Some(id);
        self
    }

    /// Sets the bucket (default [`DEFAULT_BUCKET`]).
    pub fn bucket(mut self, bucket: impl Into<String>) -> Self {
        self.event.bucket = bucket.into();
        self
    }

    /// Sets when it happened (default: now); truncated to milliseconds.
    pub fn time(mut self, time: DateTime<Utc>) -> Self {
        self.time = Some(time);
        self
    }

    /// Sets who did it.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.event.actor = actor;
        self
    }

    /// Adds a resource touched (call once per target, in order).
    pub fn target(mut self, target: Target) -> Self {
        self.event.targets.push(target);
        self
    }

    /// Sets the human-readable summary.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.event.description = description.into();
        self
    }

    /// Sets the whole request context.
    pub fn context(mut self, context: Context) -> Self {
        self.event.context = context;
        self
    }

    /// Sets `context.remote_ip`.
    pub fn remote_ip(mut self, ip: impl Into<String>) -> Self {
        self.event.context.remote_ip = ip.into();
        self
    }

    /// Sets `context.user_agent`.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.event.context.user_agent = ua.into();
        self
    }

    /// Sets `context.location`.
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.event.context.location = Some(location.into());
        self
    }

    /// Sets the request payload: a [`serde_json::Value`] (`json!({...})`), or a [`Payload`] made from
    /// JSON text the service already has ([`Payload::from_json`]).
    pub fn request(mut self, request: impl Into<Payload>) -> Self {
        self.event.request = request.into();
        self
    }

    /// Sets the response payload (as [`AuditEventBuilder::request`]).
    pub fn response(mut self, response: impl Into<Payload>) -> Self {
        self.event.response = response.into();
        self
    }

    /// Sets the outcome (default success).
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.event.outcome = outcome;
        self
    }

    /// Marks the event failed with `reason`.
    pub fn failure(self, reason: impl Into<String>) -> Self {
        self.outcome(Outcome::failure(reason))
    }

    /// Groups this event with the others of one operation.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.event.correlation_id = Some(id.into());
        self
    }

    /// Finishes the event without validating it (for tests of invalid events).
    pub fn build_unchecked(mut self) -> AuditEvent {
        let time = self.time.unwrap_or_else(Utc::now);
        self.event.time = truncate_to_millis(time);
        self.event.event_id = self.event_id.unwrap_or_else(|| new_event_id(time));
        self.event
    }

    /// Finishes and validates the event.
    pub fn build(self) -> Result<AuditEvent, ValidationError> {
        let event = self.build_unchecked();
        event.validate()?;
        Ok(event)
    }
}

/// A new UUIDv7 whose timestamp is `time` (so ids sort by event time).
pub fn new_event_id(time: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(time.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(ms, &rand::random()).into_uuid()
}

impl Actor {
    /// A person signed in to the dashboard.
    pub fn user(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self::new(ActorType::User, id, name)
    }

    /// An API root key.
    pub fn root_key(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self::new(ActorType::RootKey, id, name)
    }

    /// The platform itself; `id` names the component (`billing-job`).
    pub fn system(id: impl Into<String>) -> Self {
        let id = id.into();
        Self::new(ActorType::System, id.clone(), id)
    }

    /// An actor of any kind.
    pub fn new(kind: ActorType, id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
            name: name.into(),
            meta: None,
        }
    }

    /// Attaches metadata.
    pub fn with_meta(mut self, meta: Metadata) -> Self {
        self.meta = Some(meta);
        self
    }
}

impl Target {
    /// A resource of type `kind` (`key`, `api`, ...).
    pub fn new(kind: impl Into<String>, id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            name: name.into(),
            meta: None,
        }
    }

    /// Attaches metadata.
    pub fn with_meta(mut self, meta: Metadata) -> Self {
        self.meta = Some(meta);
        self
    }
}

impl From<&str> for EventType {
    fn from(s: &str) -> Self {
        EventType::new(s)
    }
}

impl From<String> for EventType {
    fn from(s: String) -> Self {
        EventType::new(s)
    }
}
