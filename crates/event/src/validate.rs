//! Validation: every rule an event must pass before it leaves a producer or enters the store.
//! The error names the field (`targets[2].id`) and the rule it broke.

use std::fmt;
use std::io;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::EventType;
use crate::limits::*;
use crate::model::{AuditEvent, Metadata, OutcomeStatus, SCHEMA_VERSION};

/// An event broke a rule. `field` is the JSON path (`actor.id`, `targets[2].id`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ValidationError {
    /// JSON path of the offending field.
    pub field: String,
    /// The rule it broke.
    pub rule: Rule,
}

impl ValidationError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, rule: Rule) -> Self {
        Self {
            field: field.into(),
            rule,
        }
    }
}

/// The validation rules.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// Must not be empty.
    Required,
    /// Longer than allowed (bytes).
    TooLong {
        /// The limit.
        max: usize,
        /// The actual length.
        actual: usize,
    },
    /// Serialized size over the limit (bytes).
    TooLarge {
        /// The limit.
        max: usize,
        /// The actual size.
        actual: usize,
    },
    /// More items than allowed.
    TooMany {
        /// The limit.
        max: usize,
        /// The actual count.
        actual: usize,
    },
    /// Does not follow the naming rule / format; says what was expected.
    Format(&'static str),
    /// Contains control characters.
    ControlCharacters,
    /// Missing, or of the wrong JSON type (the serde message).
    Shape(String),
    /// More than [`MAX_FUTURE_SKEW`] in the future.
    InFuture,
    /// Before 2000-01-01.
    TooOld,
    /// Not the schema version this crate speaks.
    UnsupportedVersion(u16),
    /// A failed outcome must say why.
    ReasonRequired,
    /// A successful outcome carries no reason.
    ReasonNotAllowed,
}

impl Rule {
    /// Short machine-readable name of the rule.
    pub fn code(&self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::TooLong { .. } => "too_long",
            Rule::TooLarge { .. } => "too_large",
            Rule::TooMany { .. } => "too_many",
            Rule::Format(_) => "format",
            Rule::ControlCharacters => "control_characters",
            Rule::Shape(_) => "shape",
            Rule::InFuture => "in_future",
            Rule::TooOld => "too_old",
            Rule::UnsupportedVersion(_) => "unsupported_version",
            Rule::ReasonRequired => "reason_required",
            Rule::ReasonNotAllowed => "reason_not_allowed",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Required => f.write_str("is required and must not be empty"),
            Rule::TooLong { max, actual } => write!(f, "is {actual} bytes long, at most {max}"),
            Rule::TooLarge { max, actual } => {
                write!(f, "serializes to {actual} bytes, at most {max}")
            }
            Rule::TooMany { max, actual } => write!(f, "has {actual} items, at most {max}"),
            Rule::Format(expected) => write!(f, "must be {expected}"),
            Rule::ControlCharacters => f.write_str("must not contain control characters"),
            Rule::Shape(msg) => f.write_str(msg),
            Rule::InFuture => write!(
                f,
                "is more than {} minutes in the future",
                MAX_FUTURE_SKEW.num_minutes()
            ),
            Rule::TooOld => f.write_str("is before 2000-01-01T00:00:00Z"),
            Rule::UnsupportedVersion(v) => {
                write!(
                    f,
                    "version {v} is not supported (expected {SCHEMA_VERSION})"
                )
            }
            Rule::ReasonRequired => f.write_str("is required when outcome.status is failure"),
            Rule::ReasonNotAllowed => f.write_str("must be absent when outcome.status is success"),
        }
    }
}

type Result<T = ()> = std::result::Result<T, ValidationError>;

impl AuditEvent {
    /// Checks every rule against the current time. See [`AuditEvent::validate_at`].
    pub fn validate(&self) -> Result {
        self.validate_at(Utc::now())
    }

    /// Checks every rule, judging `time` against `now`. Returns the first broken rule.
    pub fn validate_at(&self, now: DateTime<Utc>) -> Result {
        self.validate_sized(now, serialized_len(self))
    }

    /// Validates and serializes in one go (the event is serialized once, not twice): the wire
    /// bytes of a valid event, or the first broken rule.
    pub fn to_validated_json_bytes(&self) -> Result<Vec<u8>> {
        let bytes = self.to_json_bytes();
        self.validate_sized(Utc::now(), bytes.len())?;
        Ok(bytes)
    }

    /// Every rule, given the event's size as JSON: `total` is its serialized size (or the
    /// size of the wire bytes it was read from, never smaller). A part is never larger than
    /// the whole, so a part's own size is measured (serialized again) only when the whole
    /// event is over that part's limit.
    pub(crate) fn validate_sized(&self, now: DateTime<Utc>, total: usize) -> Result {
        if self.version != SCHEMA_VERSION {
            return Err(ValidationError::new(
                "version",
                Rule::UnsupportedVersion(self.version),
            ));
        }
        if self.event_id.get_version_num() != 7 {
            return Err(ValidationError::new("event_id", Rule::Format("a UUIDv7")));
        }
        id("workspace_id", &self.workspace_id)?;
        bucket("bucket", &self.bucket)?;
        if !EventType::is_well_formed(self.event.as_str()) {
            return Err(ValidationError::new(
                "event",
                Rule::Format("`resource.action`: lowercase letters, digits and `_`, each part starting with a letter, 64 bytes at most"),
            ));
        }
        if self.time > now + MAX_FUTURE_SKEW {
            return Err(ValidationError::new("time", Rule::InFuture));
        }
        if self.time < min_time() {
            return Err(ValidationError::new("time", Rule::TooOld));
        }
        id("actor.id", &self.actor.id)?;
        text("actor.name", &self.actor.name, MAX_NAME_LEN)?;
        meta("actor.meta", self.actor.meta.as_ref(), total)?;
        if self.targets.is_empty() {
            return Err(ValidationError::new("targets", Rule::Required));
        }
        if self.targets.len() > MAX_TARGETS {
            return Err(ValidationError::new(
                "targets",
                Rule::TooMany {
                    max: MAX_TARGETS,
                    actual: self.targets.len(),
                },
            ));
        }
        for (i, t) in self.targets.iter().enumerate() {
            // Field names are built only for an error: this loop runs for every event sent.
            let at = |e: ValidationError| ValidationError {
                field: format!("targets[{i}].{}", e.field),
                ..e
            };
            bucket("type", &t.kind).map_err(at)?;
            id("id", &t.id).map_err(at)?;
            text("name", &t.name, MAX_NAME_LEN).map_err(at)?;
            meta("meta", t.meta.as_ref(), total).map_err(at)?;
        }
        required("description", &self.description)?;
        text("description", &self.description, MAX_DESCRIPTION_LEN)?;
        let ip = &self.context.remote_ip;
        if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
            return Err(ValidationError::new(
                "context.remote_ip",
                Rule::Format("an IPv4 or IPv6 address, or empty"),
            ));
        }
        text(
            "context.user_agent",
            &self.context.user_agent,
            MAX_USER_AGENT_LEN,
        )?;
        if let Some(loc) = &self.context.location {
            text("context.location", loc, MAX_LOCATION_LEN)?;
        }
        size("request", &self.request, MAX_PAYLOAD_BYTES, total)?;
        size("response", &self.response, MAX_PAYLOAD_BYTES, total)?;
        match (self.outcome.status, &self.outcome.reason) {
            (OutcomeStatus::Failure, None) => {
                return Err(ValidationError::new("outcome.reason", Rule::ReasonRequired))
            }
            (OutcomeStatus::Failure, Some(r)) => {
                required("outcome.reason", r)?;
                text("outcome.reason", r, MAX_REASON_LEN)?;
            }
            (OutcomeStatus::Success, Some(_)) => {
                return Err(ValidationError::new(
                    "outcome.reason",
                    Rule::ReasonNotAllowed,
                ))
            }
            (OutcomeStatus::Success, None) => {}
        }
        if let Some(c) = &self.correlation_id {
            id("correlation_id", c)?;
        }
        whole_event(total)
    }
}

fn required(field: &str, s: &str) -> Result {
    if s.trim().is_empty() {
        return Err(ValidationError::new(field, Rule::Required));
    }
    Ok(())
}

/// Length limit and no control characters (newlines and tabs are fine in free text).
fn text(field: &str, s: &str, max: usize) -> Result {
    within(field, s, max)?;
    let allowed = |c: char| matches!(c, '\n' | '\t' | '\r');
    if any_char(
        s,
        |c| c.is_control() && !allowed(c),
        |b| (b < 0x20 && !allowed(char::from(b))) || b == 0x7f,
    ) {
        return Err(ValidationError::new(field, Rule::ControlCharacters));
    }
    Ok(())
}

/// Whether `bad` holds for a character of `s`. Every event's strings go through this, and
/// nearly all of them are ASCII: those are checked with `bad_ascii` (the same rule for an
/// ASCII byte) over all bytes without an early exit, which the compiler vectorizes.
fn any_char(s: &str, bad: impl Fn(char) -> bool, bad_ascii: impl Fn(u8) -> bool) -> bool {
    if s.is_ascii() {
        s.bytes().fold(false, |found, b| found | bad_ascii(b))
    } else {
        s.chars().any(bad)
    }
}

fn within(field: &str, s: &str, max: usize) -> Result {
    if s.len() > max {
        return Err(ValidationError::new(
            field,
            Rule::TooLong {
                max,
                actual: s.len(),
            },
        ));
    }
    Ok(())
}

/// Non-empty, at most `max` bytes, every character accepted by `ok`.
fn token(field: &str, s: &str, max: usize, ok: bool, expected: &'static str) -> Result {
    if s.is_empty() {
        return Err(ValidationError::new(field, Rule::Required));
    }
    within(field, s, max)?;
    if !ok {
        return Err(ValidationError::new(field, Rule::Format(expected)));
    }
    Ok(())
}

/// The rule of every id of an event (`workspace_id`, `actor.id`, target ids,
/// `correlation_id`): required, at most [`MAX_ID_LEN`] bytes, no whitespace or control
/// characters. Public so that whatever names a workspace outside an event (the admin API, the
/// CLI) accepts exactly the ids an event can carry.
pub fn check_id(field: &str, s: &str) -> Result {
    id(field, s)
}

/// Ids: required, at most [`MAX_ID_LEN`], no whitespace or control characters.
fn id(field: &str, s: &str) -> Result {
    let ok = !any_char(
        s,
        |c| c.is_whitespace() || c.is_control(),
        |b| b <= b' ' || b == 0x7f,
    );
    token(
        field,
        s,
        MAX_ID_LEN,
        ok,
        "free of whitespace and control characters",
    )
}

/// Bucket and target type names: `[a-z][a-z0-9_-]*`, at most [`MAX_BUCKET_LEN`].
fn bucket(field: &str, s: &str) -> Result {
    let mut chars = s.chars();
    let ok = matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'));
    let expected = "lowercase letters, digits, `_` and `-`, starting with a letter";
    token(field, s, MAX_BUCKET_LEN, ok, expected)
}

fn meta(field: &str, m: Option<&Metadata>, total: usize) -> Result {
    match m {
        Some(m) => size(field, m, MAX_METADATA_BYTES, total),
        None => Ok(()),
    }
}

fn whole_event(total: usize) -> Result {
    if total > MAX_EVENT_BYTES {
        return Err(ValidationError::new(
            "(event)",
            Rule::TooLarge {
                max: MAX_EVENT_BYTES,
                actual: total,
            },
        ));
    }
    Ok(())
}

/// `v` (a part of an event whose serialized size is `total`) is at most `max` bytes.
fn size<T: Serialize + ?Sized>(field: &str, v: &T, max: usize, total: usize) -> Result {
    if total <= max {
        return Ok(());
    }
    let actual = serialized_len(v);
    if actual > max {
        return Err(ValidationError::new(field, Rule::TooLarge { max, actual }));
    }
    Ok(())
}

/// Bytes `v` takes as compact JSON, without allocating it.
pub(crate) fn serialized_len<T: Serialize + ?Sized>(v: &T) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing into a counter cannot fail, and the model has string keys only.
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}
