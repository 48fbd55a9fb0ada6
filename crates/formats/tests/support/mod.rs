//! Fixed events shared by the format tests and the docs generator.

use auditlog_event::{Actor, AuditEvent, Payload, Target};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

/// When the example events were stored (epoch ms): 2026-11-25T22:03:29.456Z.
pub const INSERTED_MS: i64 = 1_795_644_209_456;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A key creation by a dashboard user, with metadata, a correlation id and payloads.
pub fn key_create() -> AuditEvent {
    let mut actor = Actor::user("user_2x9Lq", "Ada Lovelace");
    actor.meta = Some(
        json!({"email": "ada@example.com"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let mut key = Target::new("key", "key_3ZbPq8", "production");
    key.meta = Some(json!({"prefix": "sk_live"}).as_object().unwrap().clone());
    AuditEvent::builder("ws_8f2KdQ", "key.create")
        .event_id(Uuid::parse_str("019ac0d4-5a2b-7c11-8e3f-2b6d1f0a9c41").unwrap())
        .time(at("2026-11-25T22:03:29.123Z"))
        .actor(actor)
        .target(Target::new("api", "api_7Hc2", "payments"))
        .target(key)
        .description("Ada Lovelace created key production in payments")
        .remote_ip("203.0.113.7")
        .user_agent("Mozilla/5.0 (X11; Linux x86_64)")
        .location("DE")
        .request(
            Payload::from_json(r#"{"name":"production","apiId":"api_7Hc2","expires":null}"#)
                .unwrap(),
        )
        .response(Payload::from_json(r#"{"keyId":"key_3ZbPq8"}"#).unwrap())
        .correlation_id("req_5d1c")
        .build()
        .unwrap()
}

/// A member removal that failed, by a root key, from no known address.
pub fn member_remove() -> AuditEvent {
    AuditEvent::builder("ws_8f2KdQ", "workspace.member_remove")
        .event_id(Uuid::parse_str("019ac0d4-6b3c-7d22-9f40-3c7e2a1b0d52").unwrap())
        .time(at("2026-11-25T22:04:00.000Z"))
        .actor(Actor::root_key("rk_91aa", "ci deploy"))
        .target(Target::new("workspace", "ws_8f2KdQ", "Acme"))
        .target(Target::new("user", "user_77Tq", "Grace Hopper"))
        .description("ci deploy tried to remove Grace Hopper from the workspace")
        .request(Payload::from_json(r#"{"memberId":"user_77Tq"}"#).unwrap())
        .failure("insufficient_permissions")
        .build()
        .unwrap()
}
