//! Shared helpers: a fresh database per test, seeded rows, and the real app driven in-process.
#![allow(dead_code)]

use std::collections::HashMap;

use auditlog_query::api::{app, AppState};
use auditlog_query::ApiConfig;
use auditlog_store::ClickHouseConfig;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt as _;
use uuid::Uuid;

pub const ADMIN: &str = "admin-token-for-tests-0123456789";
pub const DAY_MS: i64 = 86_400_000;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// One events row exactly as the consumer writes it (`auditlog_store::events::EventRow`).
pub use auditlog_store::events::EventRow as Seed;

/// Test constructors for seeded rows.
pub trait SeedExt {
    /// A plausible event of `ws` at `time` (epoch ms).
    fn new(ws: &str, event: &str, time: i64) -> Self;
    /// Replaces the targets with `(type, id)` pairs.
    fn set_targets(&mut self, t: &[(&str, &str)]);
}

impl SeedExt for Seed {
    fn new(ws: &str, event: &str, time: i64) -> Self {
        let mut s = Seed {
            event_id: Uuid::now_v7(),
            workspace_id: ws.into(),
            bucket: "default".into(),
            event: event.into(),
            time,
            actor_type: "user".into(),
            actor_id: "user_1".into(),
            actor_name: "Ada".into(),
            actor_meta: String::new(),
            target_types: vec![],
            target_ids: vec![],
            target_names: vec![],
            targets: String::new(),
            description: format!("Ada did {event}"),
            remote_ip: "10.0.0.1".into(),
            user_agent: "test".into(),
            location: String::new(),
            request: r#"{"a":1}"#.into(),
            response: r#"{"ok":true}"#.into(),
            outcome: "success".into(),
            failure_reason: String::new(),
            correlation_id: String::new(),
            version: 1,
            retention_days: 7,
            kafka_partition: 0,
            kafka_offset: 0,
        };
        s.set_targets(&[("key", "key_1")]);
        s
    }

    fn set_targets(&mut self, t: &[(&str, &str)]) {
        self.target_types = t.iter().map(|(a, _)| a.to_string()).collect();
        self.target_ids = t.iter().map(|(_, b)| b.to_string()).collect();
        self.target_names = t.iter().map(|(_, b)| format!("name of {b}")).collect();
        let json: Vec<Value> = t
            .iter()
            .map(|(a, b)| serde_json::json!({"type": a, "id": b, "name": format!("name of {b}")}))
            .collect();
        self.targets = serde_json::to_string(&json).unwrap();
    }
}

/// A plausible event of `ws` at Kafka `(partition, offset)` with event time `time` (the feed's
/// seeds).
pub fn at(ws: &str, partition: i32, offset: i64, time: i64) -> Seed {
    let mut s = Seed::new(ws, "key.create", time);
    s.kafka_partition = partition;
    s.kafka_offset = offset;
    s
}

pub struct Harness {
    pub ch: ClickHouseConfig,
    pub client: clickhouse::Client,
    pub app: Router,
}

impl Harness {
    pub async fn new(prefix: &str) -> Self {
        Self::with_config(prefix, ApiConfig::default()).await
    }

    pub async fn with_config(prefix: &str, api: ApiConfig) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_test_writer()
            .try_init();
        let ch = auditlog_testkit::fresh_database(prefix)
            .await
            .expect("the test stack's ClickHouse must be running (tests/run.sh)");
        let client = ch.client();
        let cfg = ApiConfig {
            admin_token: ADMIN.into(),
            ..api
        };
        let app = app(AppState::new(
            &cfg,
            client.clone(),
            auditlog_testkit::prometheus(auditlog_query::api::metrics::HISTOGRAM_BUCKETS),
        ));
        Self { ch, client, app }
    }

    /// Writes `rows` as the consumer writes a batch (one INSERT), with a token of its own:
    /// seeding the same rows twice stores them twice.
    pub async fn seed(&self, rows: &[Seed]) {
        let token = format!("seed:{}", Uuid::now_v7());
        auditlog_store::events::insert(&self.client, rows, &token)
            .await
            .unwrap();
    }

    pub async fn token(&self, ws: &str) -> String {
        let (st, body) = self
            .json(
                "POST",
                "/v1/admin/tokens",
                Some(ADMIN),
                Some(serde_json::json!({"workspace_id": ws, "name": "test"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Any request; returns status, headers and body bytes.
    pub async fn raw(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let req = b
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (status, headers, bytes)
    }

    /// A request with an optional JSON body; the answer parsed as JSON (Null when empty).
    pub async fn json(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (st, _, bytes) = self
            .raw(
                method,
                uri,
                token,
                body.map(|b| serde_json::to_vec(&b).unwrap()),
            )
            .await;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{uri}: not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (st, v)
    }

    /// GET a list URL and every following page; returns all events in order.
    pub async fn walk(&self, token: &str, base: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if base.contains('?') { '&' } else { '?' };
            let uri = match &cursor {
                Some(c) => format!("{base}{sep}cursor={c}"),
                None => base.to_owned(),
            };
            let (st, body) = self.json("GET", &uri, Some(token), None).await;
            assert_eq!(st, StatusCode::OK, "{uri}: {body}");
            out.extend(body["data"].as_array().unwrap().iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }
}

pub fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Seed ids sorted like the API (time desc, then event_id desc as ClickHouse orders UUIDs;
/// UUIDv7 of the same test sort the same way as their text).
pub fn expected(rows: &[&Seed]) -> Vec<String> {
    let mut v: Vec<&&Seed> = rows.iter().collect();
    v.sort_by_key(|s| std::cmp::Reverse((s.time, s.event_id.to_string())));
    v.iter().map(|s| s.event_id.to_string()).collect()
}

pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn counts(v: &Value) -> HashMap<String, u64> {
    v["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["event"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect()
}
