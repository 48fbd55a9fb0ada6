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
    /// A broken rule is `invalid_field`, except an unsupported `version`: that is
    /// `unknown_version` whichever step noticed it (parsing a version that is not a `u16`, or
    /// validating one that is), so every path reports it with the same code.
    fn from(e: ValidationError) -> Self {
        match e.rule {
            Rule::UnsupportedVersion(v) => DecodeError::UnknownVersion(v.to_string()),
            _ => DecodeError::InvalidField(e),
        }
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
///
/// The defaults are added to the text, which is then decoded like any other: the payloads
/// stay exactly the bytes given (a number such as `18446744073709551617` or `1e400` is not
/// rounded through a `Value`).
pub fn decode_with_defaults(bytes: &[u8]) -> Result<AuditEvent, DecodeError> {
    let text = precheck(bytes)?;
    let filled = with_defaults(text);
    let text = filled.as_deref().unwrap_or(text);
    let event: AuditEvent = parse(text)?;
    event.validate()?;
    Ok(event)
}

/// `text` with the missing defaults inserted at the start of its object, or `None` when
/// nothing is missing or `text` is not one JSON object (then [`parse`] explains what is wrong).
fn with_defaults(text: &str) -> Option<String> {
    /// Whether a field is present, whatever its value (`null` included).
    #[derive(Default)]
    struct Present(bool);
    impl<'de> Deserialize<'de> for Present {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| Present(true))
        }
    }
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        event_id: Present,
        #[serde(default)]
        version: Present,
        #[serde(default)]
        time: Present,
    }
    let body = text.trim_start().strip_prefix('{')?;
    let probe: Probe = serde_json::from_str(text).ok()?;
    let mut fields = Vec::new();
    if !probe.event_id.0 {
        fields.push(format!("\"event_id\":\"{}\"", Uuid::now_v7()));
    }
    if !probe.version.0 {
        fields.push(format!("\"version\":{SCHEMA_VERSION}"));
    }
    if !probe.time.0 {
        fields.push(format!(
            "\"time\":{}",
            chrono::Utc::now().timestamp_millis()
        ));
    }
    if fields.is_empty() {
        return None;
    }
    let sep = if body.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    Some(format!("{{{}{sep}{body}", fields.join(",")))
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
