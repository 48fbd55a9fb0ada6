//! Every validation rule, and every decode reason: rejected with the field named.

use auditlog_event::limits::*;
use auditlog_event::{
    decode, decode_with_defaults, Actor, AuditEvent, DecodeError, KnownEvent, Outcome, Target,
};
use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};

fn good() -> AuditEvent {
    AuditEvent::builder("ws_abc", KnownEvent::KeyCreate)
        .actor(Actor::user("user_1", "Alice Chen"))
        .target(Target::new("api", "api_1", "payments"))
        .target(Target::new("key", "key_1", "prod-billing"))
        .description("Alice Chen created key 'prod-billing' in API 'payments'")
        .remote_ip("2001:db8::1")
        .user_agent("Mozilla/5.0")
        .request(json!({"name": "prod-billing"}))
        .response(json!({"keyId": "key_1"}))
        .build()
        .unwrap()
}

#[track_caller]
fn rejects(mutate: impl FnOnce(&mut AuditEvent), field: &str, code: &str) {
    let mut e = good();
    mutate(&mut e);
    let err = e.validate().unwrap_err();
    assert_eq!(err.field, field, "{err}");
    assert_eq!(e.to_validated_json_bytes().unwrap_err(), err);
    assert_eq!(err.rule.code(), code, "{err}");
    // The consumer's decode sees the same rule, named the same way.
    match decode(&e.to_json_bytes()) {
        Err(DecodeError::InvalidField(d)) => assert_eq!(d, err),
        Err(DecodeError::TooLarge { .. }) if field == "(event)" => {}
        // Another schema version is `unknown_version` on every path, not a broken field.
        Err(DecodeError::UnknownVersion(_)) if field == "version" => {}
        other => panic!("decode: {other:?}"),
    }
}

#[test]
fn builder_defaults() {
    let e = good();
    assert_eq!(e.event_id.get_version_num(), 7);
    assert_eq!(e.bucket, auditlog_event::DEFAULT_BUCKET);
    assert_eq!(e.version, auditlog_event::SCHEMA_VERSION);
    assert!((Utc::now() - e.time).num_seconds().abs() < 5);
    assert_eq!(e.time.timestamp_subsec_nanos() % 1_000_000, 0);
    assert_eq!(e.outcome, Outcome::success());
    assert_eq!(decode(&e.to_json_bytes()).unwrap(), e);
    assert_eq!(e.to_validated_json_bytes().unwrap(), e.to_json_bytes());
}

#[test]
fn builder_validates() {
    let err = AuditEvent::builder("ws_abc", "key.create")
        .description("x")
        .build()
        .unwrap_err();
    assert_eq!(err.field, "targets");
}

#[test]
fn ids() {
    rejects(|e| e.workspace_id.clear(), "workspace_id", "required");
    rejects(|e| e.workspace_id = "ws 1".into(), "workspace_id", "format");
    rejects(
        |e| e.workspace_id = "w".repeat(MAX_ID_LEN + 1),
        "workspace_id",
        "too_long",
    );
    rejects(|e| e.actor.id.clear(), "actor.id", "required");
    rejects(
        |e| e.targets[1].id = "a\tb".into(),
        "targets[1].id",
        "format",
    );
    rejects(
        |e| e.correlation_id = Some(String::new()),
        "correlation_id",
        "required",
    );
    rejects(|e| e.event_id = uuid::Uuid::new_v4(), "event_id", "format");
}

#[test]
fn names_and_types() {
    rejects(|e| e.event = "Key.Create".into(), "event", "format");
    rejects(|e| e.event = "key".into(), "event", "format");
    rejects(|e| e.bucket = "Billing".into(), "bucket", "format");
    rejects(|e| e.bucket.clear(), "bucket", "required");
    rejects(
        |e| e.targets[0].kind = "API key".into(),
        "targets[0].type",
        "format",
    );
    rejects(
        |e| e.actor.name = "n".repeat(MAX_NAME_LEN + 1),
        "actor.name",
        "too_long",
    );
    rejects(
        |e| e.targets[1].name = "a\u{0}b".into(),
        "targets[1].name",
        "control_characters",
    );
    // Custom types that follow the naming rule are fine.
    let mut e = good();
    e.event = "billing.invoice_paid".into();
    e.validate().unwrap();
}

#[test]
fn targets() {
    rejects(|e| e.targets.clear(), "targets", "required");
    rejects(
        |e| e.targets = vec![Target::new("key", "k", "k"); MAX_TARGETS + 1],
        "targets",
        "too_many",
    );
}

#[test]
fn description() {
    rejects(|e| e.description = "  ".into(), "description", "required");
    rejects(
        |e| e.description = "d".repeat(MAX_DESCRIPTION_LEN + 1),
        "description",
        "too_long",
    );
}

#[test]
fn time_window() {
    rejects(
        |e| e.time = Utc::now() + TimeDelta::minutes(61),
        "time",
        "in_future",
    );
    rejects(
        |e| e.time = min_time() - TimeDelta::milliseconds(1),
        "time",
        "too_old",
    );
    let mut e = good();
    e.time = Utc::now() + TimeDelta::minutes(59);
    e.validate().unwrap();
}

#[test]
fn context() {
    rejects(
        |e| e.context.remote_ip = "10.0.0.300".into(),
        "context.remote_ip",
        "format",
    );
    rejects(
        |e| e.context.user_agent = "u".repeat(MAX_USER_AGENT_LEN + 1),
        "context.user_agent",
        "too_long",
    );
    rejects(
        |e| e.context.location = Some("l".repeat(MAX_LOCATION_LEN + 1)),
        "context.location",
        "too_long",
    );
}

#[test]
fn outcome() {
    rejects(
        |e| e.outcome.status = auditlog_event::OutcomeStatus::Failure,
        "outcome.reason",
        "reason_required",
    );
    rejects(
        |e| e.outcome = Outcome::failure(""),
        "outcome.reason",
        "required",
    );
    rejects(
        |e| e.outcome.reason = Some("why".into()),
        "outcome.reason",
        "reason_not_allowed",
    );
}

#[test]
fn sizes() {
    let big = |n: usize| Value::String("x".repeat(n));
    rejects(
        |e| e.request = big(MAX_PAYLOAD_BYTES).into(),
        "request",
        "too_large",
    );
    rejects(
        |e| e.response = big(MAX_PAYLOAD_BYTES).into(),
        "response",
        "too_large",
    );
    let meta = |n: usize| {
        let mut m = serde_json::Map::new();
        m.insert("k".into(), big(n));
        m
    };
    rejects(
        |e| e.actor.meta = Some(meta(MAX_METADATA_BYTES)),
        "actor.meta",
        "too_large",
    );
    rejects(
        |e| e.targets[0].meta = Some(meta(MAX_METADATA_BYTES)),
        "targets[0].meta",
        "too_large",
    );
    // Each payload under its limit, the whole event over its limit.
    rejects(
        |e| {
            e.request = big(MAX_PAYLOAD_BYTES - 100).into();
            e.response = big(MAX_PAYLOAD_BYTES - 100).into();
            e.actor.meta = Some(meta(MAX_METADATA_BYTES - 100));
            for t in &mut e.targets {
                t.meta = Some(meta(MAX_METADATA_BYTES - 100));
            }
            for i in 0..40 {
                e.targets.push(
                    Target::new("key", format!("k{i}"), "")
                        .with_meta(meta(MAX_METADATA_BYTES - 100)),
                );
            }
        },
        "(event)",
        "too_large",
    );
}

#[test]
fn version() {
    rejects(|e| e.version = 2, "version", "unsupported_version");
}

fn wire() -> Value {
    serde_json::to_value(good()).unwrap()
}

#[track_caller]
fn decode_code(bytes: &[u8]) -> (String, Option<String>) {
    let err = decode(bytes).unwrap_err();
    (err.code().to_owned(), err.field().map(str::to_owned))
}

#[test]
fn decode_reasons() {
    assert_eq!(decode_code(b"\xff\xfe{}").0, "invalid_utf8");
    assert_eq!(decode_code(b"{\"event_id\": ").0, "not_json");
    assert_eq!(decode_code(b"hello").0, "not_json");
    let big = vec![b' '; MAX_EVENT_BYTES + 1];
    assert_eq!(decode_code(&big).0, "too_large");

    let mut v = wire();
    v["severity"] = json!("high");
    assert_eq!(
        decode_code(v.to_string().as_bytes()),
        ("unknown_field".into(), Some("severity".into()))
    );

    let mut v = wire();
    v["actor"]["role"] = json!("admin");
    assert_eq!(
        decode_code(v.to_string().as_bytes()),
        ("unknown_field".into(), Some("actor.role".into()))
    );

    let mut v = wire();
    v["version"] = json!(2);
    v["new_field_of_v2"] = json!(true);
    assert_eq!(
        decode_code(v.to_string().as_bytes()),
        ("unknown_version".into(), Some("version".into()))
    );

    let mut v = wire();
    v.as_object_mut().unwrap().remove("workspace_id");
    assert_eq!(
        decode_code(v.to_string().as_bytes()),
        ("invalid_field".into(), Some("workspace_id".into()))
    );

    let mut v = wire();
    v["targets"][1]["id"] = json!(42);
    assert_eq!(
        decode_code(v.to_string().as_bytes()),
        ("invalid_field".into(), Some("targets[1].id".into()))
    );

    let mut v = wire();
    v["time"] = json!("yesterday");
    assert_eq!(
        decode_code(v.to_string().as_bytes()),
        ("invalid_field".into(), Some("time".into()))
    );
}

#[test]
fn time_is_read_as_rfc3339_or_millis_and_written_with_millis() {
    let mut v = wire();
    v["time"] = json!(1_764_000_000_123_i64);
    let e = decode(v.to_string().as_bytes()).unwrap();
    assert_eq!(e.time.timestamp_millis(), 1_764_000_000_123);
    let out: Value = serde_json::from_slice(&e.to_json_bytes()).unwrap();
    assert_eq!(out["time"], json!("2025-11-24T16:00:00.123Z"));
    v["time"] = json!("2025-11-24T17:00:00.123456+01:00");
    assert_eq!(decode(v.to_string().as_bytes()).unwrap().time, e.time);
}

#[test]
fn decode_with_defaults_fills_id_version_and_time() {
    let mut v = wire();
    let obj = v.as_object_mut().unwrap();
    obj.remove("event_id");
    obj.remove("version");
    obj.remove("time");
    obj.remove("bucket");
    let e = decode_with_defaults(v.to_string().as_bytes()).unwrap();
    assert_eq!(e.event_id.get_version_num(), 7);
    assert_eq!(e.version, 1);
    assert_eq!(e.bucket, "default");
    // The strict decode wants them.
    assert_eq!(decode_code(v.to_string().as_bytes()).0, "invalid_field");
}
