//! The JSON wire format: [`decode`] (bytes to a validated event, with a typed reason when that
//! fails) and [`AuditEvent::to_json_bytes`].

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::limits::MAX_EVENT_BYTES;
use crate::model::{AuditEvent, SCHEMA_VERSION};
use crate::validate::{Rule, ValidationError};

/// Why bytes are not a valid audit event. Every variant has a short [`DecodeError::code`]
/// (for dead-letter headers and metrics labels); `Display` is the readable explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Larger than [`MAX_EVENT_BYTES`].
    #[error("event is {actual} bytes, at most {max}")]
    TooLarge {
        /// The limit.
        max: usize,
        /// The payload size.
        actual: usize,
    },
    /// Not valid UTF-8.
    #[error("payload is not valid UTF-8 (first bad byte at offset {valid_up_to})")]
    InvalidUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// Not a JSON document (syntax error or truncated).
    #[error("payload is not JSON: {0}")]
    NotJson(String),
    /// A field this schema version does not define.
    #[error("{field}: unknown field")]
    UnknownField {
        /// JSON path of the unknown field.
        field: String,
    },
    /// `version` is not one this crate reads.
    #[error("version: {0} is not a supported schema version (expected {SCHEMA_VERSION})")]
    UnknownVersion(String),
    /// A field is missing, of the wrong type, or breaks a validation rule.
    #[error("{0}")]
    InvalidField(ValidationError),
}

impl DecodeError {
    /// Short machine-readable reason: `too_large`, `invalid_utf8`, `not_json`,
    /// `unknown_field`, `unknown_version` or `invalid_field`.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::InvalidUtf8 { .. } => "invalid_utf8",
            DecodeError::NotJson(_) => "not_json",
            DecodeError::UnknownField { .. } => "unknown_field",
            DecodeError::UnknownVersion(_) => "unknown_version",
            DecodeError::InvalidField(_) => "invalid_field",
        }
    }

    /// The JSON path of the offending field, when one is to blame.
    pub fn field(&self) -> Option<&str> {
        match self {
            DecodeError::UnknownField { field } => Some(field),
            DecodeError::UnknownVersion(_) => Some("version"),
            DecodeError::InvalidField(e) => Some(&e.field),
            _ => None,
        }
    }
}

impl From<ValidationError> for DecodeError {
    fn from(e: ValidationError) -> Self {
        DecodeError::InvalidField(e)
    }
}

/// Parses and validates one event from its wire bytes (what the consumer calls).
pub fn decode(bytes: &[u8]) -> Result<AuditEvent, DecodeError> {
    let text = precheck(bytes)?;
    // Nearly every message is well formed: parse without tracking the path, and parse again
    // with it only to explain a failure.
    let event: AuditEvent = match serde_json::from_str(text) {
        Ok(event) => event,
        Err(_) => parse(text)?,
    };
    // The size rules measure the wire bytes (never fewer than the compact form's) instead of
    // serializing the event again.
    event.validate_sized(chrono::Utc::now(), bytes.len())?;
    Ok(event)
}

/// Like [`decode`], but fills what a caller may leave out when writing events by hand
/// (`auditlog emit --file`): a missing `event_id` gets a new UUIDv7, a missing `version`
/// gets [`SCHEMA_VERSION`], a missing `time` gets now.
pub fn decode_with_defaults(bytes: &[u8]) -> Result<AuditEvent, DecodeError> {
    let text = precheck(bytes)?;
    let mut value: Value = parse(text)?;
    if let Value::Object(map) = &mut value {
        map.entry("event_id")
            .or_insert_with(|| Value::String(Uuid::now_v7().to_string()));
        map.entry("version")
            .or_insert_with(|| Value::from(SCHEMA_VERSION));
        map.entry("time")
            .or_insert_with(|| Value::from(chrono::Utc::now().timestamp_millis()));
    }
    let event = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        from_data_error(path, e.into_inner().to_string(), text)
    })?;
    let event: AuditEvent = event;
    event.validate()?;
    Ok(event)
}

impl AuditEvent {
    /// The wire form: compact JSON, `time` as RFC 3339 with milliseconds.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Most events are 0.5-2 KB: start big enough to skip the first few regrowths.
        let mut out = Vec::with_capacity(2048);
        // The model has string map keys only, so serializing cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }
}

fn precheck(bytes: &[u8]) -> Result<&str, DecodeError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(DecodeError::TooLarge {
            max: MAX_EVENT_BYTES,
            actual: bytes.len(),
        });
    }
    std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}

/// Deserializes with the failing field's path kept, mapping serde errors to typed reasons.
fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    use serde_json::error::Category;
    let classify = |path: String, e: serde_json::Error| match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => DecodeError::NotJson(e.to_string()),
        Category::Data => from_data_error(path, e.to_string(), text),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        classify(path, e.into_inner())
    })?;
    de.end().map_err(|e| classify(String::new(), e))?;
    Ok(value)
}

fn from_data_error(path: String, msg: String, text: &str) -> DecodeError {
    // An unknown version explains everything else that may be wrong with the shape.
    #[derive(Deserialize)]
    struct Probe {
        version: Option<Value>,
    }
    if let Ok(Probe { version: Some(v) }) = serde_json::from_str::<Probe>(text) {
        if v.as_u64() != Some(u64::from(SCHEMA_VERSION)) {
            return DecodeError::UnknownVersion(v.to_string());
        }
    }
    let name = msg.split('`').nth(1).unwrap_or_default();
    let join = |path: String| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else if path.ends_with(name) {
            path
        } else {
            format!("{path}.{name}")
        }
    };
    if msg.starts_with("unknown field") {
        return DecodeError::UnknownField { field: join(path) };
    }
    let field = if msg.starts_with("missing field") {
        join(path)
    } else if path.is_empty() {
        ".".to_owned()
    } else {
        path
    };
    // serde_json appends " at line 1 column 42"; the path says where already.
    let detail = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    DecodeError::InvalidField(ValidationError::new(field, Rule::Shape(detail)))
}
