//! `POST /v1/ingest` driven in-process against the shared test stack's ClickHouse (tokens) and
//! broker (the producer): exact per-line results, what reached the topic, limits, content
//! types, token scopes and service tokens, a full producer buffer, hostile bodies, the schema
//! URL. Process-level cases (a stopped broker, the consumer, the examples) are in
//! `tests/e2e/tests/http_ingest.rs`.

mod common;

use std::time::Duration;

use auditlog_producer::{KafkaConfig, Producer, ProducerConfig};
use auditlog_query::api::{app, AppState};
use auditlog_query::ApiConfig;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::{Harness, ADMIN};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Message as _};
use serde_json::{json, Value};
use tower::ServiceExt as _;
use uuid::Uuid;

/// A harness whose app has a producer on a fresh topic of the shared broker.
struct Ingest {
    h: Harness,
    topic: String,
}

impl Ingest {
    async fn new(prefix: &str, api: ApiConfig, producer: ProducerConfig) -> Self {
        let mut h = Harness::with_config(prefix, api.clone()).await;
        let topic = auditlog_testkit::unique_name(prefix);
        auditlog_testkit::create_topic(&topic, 2).await.unwrap();
        let kafka = KafkaConfig {
            brokers: auditlog_testkit::brokers(),
            topic: topic.clone(),
            ..KafkaConfig::default()
        };
        let producer = Producer::builder(&kafka)
            .config(&producer)
            .build()
            .await
            .expect("the test stack's broker must be running (tests/run.sh)");
        let cfg = ApiConfig {
            admin_token: ADMIN.into(),
            ..api
        };
        h.app = app(AppState::new(
            &cfg,
            h.client.clone(),
            auditlog_testkit::prometheus(auditlog_query::api::metrics::HISTOGRAM_BUCKETS),
        )
        .with_producer(producer));
        Self { h, topic }
    }

    async fn default(prefix: &str) -> Self {
        Self::new(prefix, ApiConfig::default(), ProducerConfig::default()).await
    }

    /// Creates a token with the admin API from `body`; its secret.
    async fn token(&self, body: Value) -> String {
        let (st, v) = self
            .h
            .json("POST", "/v1/admin/tokens", Some(ADMIN), Some(body))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    async fn ingest_token(&self, ws: &str) -> String {
        self.token(json!({"workspace_id": ws, "scope": "ingest"}))
            .await
    }

    /// `POST /v1/ingest` with `content_type` (none when `None`).
    async fn post(
        &self,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, HeaderMap, Value) {
        post(&self.h.app, token, content_type, body).await
    }

    async fn ndjson(&self, token: &str, body: &str) -> (StatusCode, HeaderMap, Value) {
        self.post(Some(token), Some("application/x-ndjson"), body.to_owned())
            .await
    }

    /// Every record of the topic: `(key, payload)`, waiting until `n` arrived (at most 20 s).
    fn records(&self, n: usize) -> Vec<(String, Vec<u8>)> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", auditlog_testkit::brokers())
            .set("group.id", auditlog_testkit::unique_name("ingestread"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        c.subscribe(&[&self.topic]).unwrap();
        let mut out = Vec::new();
        let until = std::time::Instant::now() + Duration::from_secs(20);
        // Past `n`, keep reading a little: a record too many must show.
        let mut quiet_until = None;
        while std::time::Instant::now() < until {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                out.push((
                    String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
            if out.len() >= n {
                let q = *quiet_until
                    .get_or_insert_with(|| std::time::Instant::now() + Duration::from_secs(1));
                if std::time::Instant::now() >= q {
                    break;
                }
            }
        }
        out
    }
}

async fn post(
    app: &axum::Router,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, HeaderMap, Value) {
    let mut b = Request::builder().method("POST").uri("/v1/ingest");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    let resp = app
        .clone()
        .oneshot(b.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, headers, v)
}

/// A valid event of `ws` (no `event_id`, `time` or `version`: filled in).
fn event(ws: &str, n: usize) -> Value {
    json!({
        "workspace_id": ws,
        "event": "key.create",
        "actor": {"type": "user", "id": format!("user_{n}")},
        "targets": [{"type": "key", "id": format!("key_{n}")}],
        "description": format!("created key {n}"),
        "request": {"n": n, "nested": {"a": [1, 2.5, "x"]}},
    })
}

fn lines(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect::<String>()
}

fn lines_of(v: &Value, key: &str) -> Vec<u64> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_batch_gets_exact_per_line_results_and_only_good_lines_reach_the_topic() {
    let t = Ingest::default("ingest_lines").await;
    let token = t.ingest_token("ws_a").await;
    let id = Uuid::now_v7();
    let mut first = event("ws_a", 1);
    first["event_id"] = json!(id);
    let mut no_actor = event("ws_a", 3);
    no_actor["actor"]["id"] = json!("");
    let mut unknown = event("ws_a", 7);
    unknown["colour"] = json!("blue");
    let body = format!(
        "{first}\n\n{no_actor}\r\nnot json\n{}\n{}\n{unknown}\n",
        event("ws_b", 5),
        event("ws_a", 6)
    );
    let (st, _, v) = t.ndjson(&token, &body).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(lines_of(&v, "accepted"), [1, 6], "{v}");
    assert_eq!(v["accepted"][0]["event_id"], json!(id));
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["failed"], json!([]));
    let rejected: Vec<(u64, Value, String)> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let msg = r["message"].as_str().unwrap();
            if let Some(f) = r["field"].as_str() {
                assert!(msg.starts_with(&format!("{f}: ")), "{r}");
            }
            (
                r["line"].as_u64().unwrap(),
                r["field"].clone(),
                r["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (3, json!("actor.id"), "invalid_field".to_owned()),
            (4, Value::Null, "not_json".to_owned()),
            (5, json!("workspace_id"), "workspace_not_allowed".to_owned()),
            (7, json!("colour"), "unknown_field".to_owned()),
        ],
        "{v}"
    );
    // Exactly the accepted events are on the topic, keyed by workspace, as `emit` would send
    // them: the decoded line (defaults filled in) in its compact form.
    let records = t.records(2);
    assert_eq!(records.len(), 2, "{records:?}");
    let mut sent_ids = Vec::new();
    for (key, payload) in &records {
        assert_eq!(key, "ws_a");
        let e = auditlog_event::decode(payload).unwrap();
        assert_eq!(e.to_json_bytes(), *payload, "compact form");
        sent_ids.push(e.event_id.to_string());
        let n = if e.event_id == id { 1 } else { 6 };
        let stored: Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(stored["request"], event("ws_a", n)["request"]);
        assert_eq!(stored["description"], format!("created key {n}"));
    }
    sent_ids.sort();
    let mut accepted: Vec<String> = v["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["event_id"].as_str().unwrap().to_owned())
        .collect();
    accepted.sort();
    assert_eq!(sent_ids, accepted);
}

#[tokio::test]
async fn one_json_event_and_an_all_rejected_batch() {
    let t = Ingest::default("ingest_single").await;
    let token = t.ingest_token("ws_a").await;
    // A pretty-printed single event is one line.
    let pretty = serde_json::to_string_pretty(&event("ws_a", 1)).unwrap();
    let (st, _, v) = t
        .post(
            Some(&token),
            Some("application/json; charset=utf-8"),
            pretty,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(lines_of(&v, "accepted"), [1]);
    // Every line rejected: 422 with the per-line results and an error naming the field.
    let mut bad = event("ws_a", 2);
    bad["targets"] = json!([]);
    let (st, _, v) = t
        .post(Some(&token), Some("application/json"), bad.to_string())
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "unprocessable");
    assert_eq!(v["rejected"][0]["field"], "targets", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("targets"),
        "{v}"
    );
    assert_eq!(v["accepted"], json!([]));
    assert_eq!(t.records(1).len(), 1, "only the first event was sent");
}

#[tokio::test]
async fn limits_content_types_and_hostile_bodies_are_never_a_500() {
    let api = ApiConfig {
        ingest_max_body_bytes: 64 * 1024,
        ingest_max_lines: 5,
        ..ApiConfig::default()
    };
    let t = Ingest::new("ingest_limits", api, ProducerConfig::default()).await;
    let token = t.ingest_token("ws_a").await;
    let nd = Some("application/x-ndjson");
    // Larger than the body limit (streamed: no Content-Length) is a 413, nothing sent.
    let big = lines(&[event("ws_a", 1)]).repeat(64 * 1024 / 200 + 10);
    let (st, _, v) = t.post(Some(&token), nd, big).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("api.ingest_max_body_bytes"));
    // More lines than allowed: 413, nothing sent.
    let six: Vec<Value> = (0..6).map(|i| event("ws_a", i)).collect();
    let (st, _, v) = t.post(Some(&token), nd, lines(&six)).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("api.ingest_max_lines"));
    // Wrong or missing content type: 415 naming the header.
    for ct in [Some("text/plain"), Some("multipart/form-data"), None] {
        let (st, _, v) = t.post(Some(&token), ct, lines(&six[..1])).await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Content-Type: "));
    }
    // Empty: 400 naming the body.
    for empty in ["", " \n\r\n "] {
        let (st, _, v) = t.post(Some(&token), nd, empty.to_owned()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("body: "));
    }
    // A query parameter: 400 naming it.
    let resp =
        t.h.app
            .clone()
            .oneshot(
                Request::builder()
                    .method("POST")
                    .uri("/v1/ingest?debug=1")
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/x-ndjson")
                    .body(Body::from(lines(&six[..1])))
                    .unwrap(),
            )
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Junk of every kind: per-line rejections (422 when all are bad), never a 500.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    // A payload nested 10,000 deep inside a valid event.
    let nested = event("ws_a", 9).to_string().replacen(
        "\"request\":{",
        &format!("\"request\":{}{{", "[".repeat(10_000)),
        1,
    );
    let nested = nested.replacen("\"x\"]}}", &format!("\"x\"]}}}}{}", "]".repeat(10_000)), 1);
    assert!(nested.len() > 20_000 && nested.contains("]]]"));
    let hostile: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, 0x00, 0x80],
        b"\x00\x01\x02".to_vec(),
        deep.into_bytes(),
        b"{\"workspace_id\": \"ws_a\", ".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"just a string\"".to_vec(),
        format!("{{\"workspace_id\":\"{}\"}}", "w".repeat(40_000)).into_bytes(),
        "{\"workspace_id\":\"ws_\u{2003}a\"}".as_bytes().to_vec(),
    ];
    for junk in &hostile {
        for ct in ["application/x-ndjson", "application/json"] {
            let (st, _, v) = t.post(Some(&token), Some(ct), junk.clone()).await;
            assert_eq!(
                st,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{ct} {:?}: {v}",
                String::from_utf8_lossy(&junk[..junk.len().min(60)])
            );
            assert_eq!(v["rejected"].as_array().unwrap().len(), 1, "{v}");
        }
    }
    let (st, _, v) = t.post(Some(&token), nd, hostile.join(&b'\n')).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "10 lines > 5: {v}");
    // A payload nested 10,000 deep is accepted as `emit` accepts it (payload depth is not a
    // rule), and answered without a stack overflow.
    let (st, _, v) = t.post(Some(&token), nd, nested).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(t.records(1).len(), 1, "only the nested event was published");
}

#[tokio::test]
async fn tokens_scopes_and_service_tokens() {
    let t = Ingest::default("ingest_tokens").await;
    let nd = Some("application/x-ndjson");
    let one = lines(&[event("ws_a", 1)]);
    // No token, a made-up one: 401.
    for token in [
        None,
        Some("alt_nope"),
        Some("alt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let (st, h, v) = t.post(token, nd, one.clone()).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(h["www-authenticate"], "Bearer");
    }
    // A read token cannot ingest; an ingest token cannot read.
    let read = t.h.token("ws_a").await;
    let (st, _, v) = t.post(Some(&read), nd, one.clone()).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "forbidden");
    assert!(v["error"]["message"].as_str().unwrap().contains("--ingest"));
    let ingest = t.ingest_token("ws_a").await;
    for uri in [
        "/v1/events",
        "/v1/workspace",
        "/v1/feed?start=now",
        "/v1/export",
    ] {
        let (st, v) = t.h.json("GET", uri, Some(&ingest), None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{uri}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ingest token"));
    }
    // An ingest token of another workspace: its lines are rejected naming workspace_id.
    let other = t.ingest_token("ws_b").await;
    let (st, _, v) = t.post(Some(&other), nd, one.clone()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["rejected"][0]["field"], "workspace_id");
    assert_eq!(v["rejected"][0]["code"], "workspace_not_allowed");
    // A service token for two workspaces, and one for all.
    let some = t
        .token(
            json!({"scope": "ingest", "name": "billing", "workspaces": ["ws_b", "ws_a", "ws_a"]}),
        )
        .await;
    let all = t.token(json!({"scope": "ingest", "name": "gateway"})).await;
    let mixed = lines(&[event("ws_a", 1), event("ws_b", 2), event("ws_c", 3)]);
    let (st, _, v) = t.post(Some(&some), nd, mixed.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(lines_of(&v, "accepted"), [1, 2]);
    assert_eq!(lines_of(&v, "rejected"), [3]);
    let (st, _, v) = t.post(Some(&all), nd, mixed).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(lines_of(&v, "accepted"), [1, 2, 3]);
    // The list shows scopes and allow-lists; `*` lists the service tokens.
    let (st, v) = t.h.json("GET", "/v1/admin/tokens", Some(ADMIN), None).await;
    assert_eq!(st, StatusCode::OK);
    let scopes: Vec<(String, String, Value)> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["workspace_id"].as_str().unwrap().to_owned(),
                t["scope"].as_str().unwrap().to_owned(),
                t["workspaces"].clone(),
            )
        })
        .collect();
    assert_eq!(
        scopes,
        [
            ("ws_a".into(), "read".into(), json!([])),
            ("ws_a".into(), "ingest".into(), json!([])),
            ("ws_b".into(), "ingest".into(), json!([])),
            ("*".into(), "ingest".into(), json!(["ws_a", "ws_b"])),
            ("*".into(), "ingest".into(), json!([])),
        ]
    );
    let (_, v) =
        t.h.json("GET", "/v1/admin/tokens?workspace_id=*", Some(ADMIN), None)
            .await;
    assert_eq!(v["tokens"].as_array().unwrap().len(), 2, "{v}");
    // Bad token requests name the field.
    for (body, field) in [
        (json!({"scope": "write", "workspace_id": "ws_a"}), "body"),
        (json!({"scope": "ingest"}), "name"),
        (json!({"scope": "read", "name": "x"}), "workspace_id"),
        (
            json!({"workspace_id": "ws_a", "scope": "ingest", "workspaces": ["ws_b"]}),
            "workspaces",
        ),
        (
            json!({"scope": "ingest", "name": "x", "workspaces": ["bad id"]}),
            "workspaces",
        ),
    ] {
        let (st, v) =
            t.h.json("POST", "/v1/admin/tokens", Some(ADMIN), Some(body.clone()))
                .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{field}: ")), "{body}: {msg}");
    }
    // A revoked ingest token is a 401 at once.
    let ws_b_token = || {
        t.h.json(
            "GET",
            "/v1/admin/tokens?workspace_id=ws_b",
            Some(ADMIN),
            None,
        )
    };
    let (_, v) = ws_b_token().await;
    let id = v["tokens"][0]["token_id"].as_str().unwrap().to_owned();
    let (st, _) =
        t.h.json(
            "DELETE",
            &format!("/v1/admin/tokens/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, _) = t.post(Some(&other), nd, one).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (_, v) = ws_b_token().await;
    assert_eq!(
        v["tokens"][0]["scope"], "ingest",
        "revoking keeps the scope"
    );
}

#[tokio::test]
async fn a_full_producer_buffer_is_a_429_with_retry_after() {
    // A buffer of one event that lingers: the first line waits in it, the others find it full.
    let producer = ProducerConfig {
        buffer_capacity: 1,
        linger: Duration::from_millis(1500),
        ..ProducerConfig::default()
    };
    let t = Ingest::new("ingest_full", ApiConfig::default(), producer).await;
    let token = t.ingest_token("ws_a").await;
    let batch: Vec<Value> = (1..=3).map(|i| event("ws_a", i)).collect();
    let (st, h, v) = t.ndjson(&token, &lines(&batch)).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(h["retry-after"], "1");
    assert_eq!(v["error"]["code"], "overloaded");
    assert_eq!(lines_of(&v, "accepted"), [1], "{v}");
    assert_eq!(lines_of(&v, "failed"), [2, 3], "{v}");
    for f in v["failed"].as_array().unwrap() {
        assert_eq!(f["code"], "overloaded");
        assert!(f["event_id"].is_string());
    }
    // Only the acknowledged event is on the topic.
    let records = t.records(1);
    assert_eq!(records.len(), 1);
    let e = auditlog_event::decode(&records[0].1).unwrap();
    assert_eq!(json!(e.event_id), v["accepted"][0]["event_id"]);
}

#[tokio::test]
async fn without_a_producer_ingest_is_503_and_off_it_is_404_and_the_schema_is_served() {
    let h = Harness::new("ingest_off").await;
    let (st, v) = h
        .json(
            "POST",
            "/v1/admin/tokens",
            Some(ADMIN),
            Some(json!({"workspace_id": "ws_a", "scope": "ingest"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["scope"], "ingest");
    let token = v["token"].as_str().unwrap().to_owned();
    let body = lines(&[event("ws_a", 1)]);
    let (st, hd, v) = post(
        &h.app,
        Some(&token),
        Some("application/x-ndjson"),
        body.clone(),
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(hd["retry-after"], "5");
    assert!(v["error"]["message"].as_str().unwrap().contains("producer"));
    let off = Harness::with_config(
        "ingest_off",
        ApiConfig {
            ingest_enabled: false,
            ..ApiConfig::default()
        },
    )
    .await;
    let (st, _, v) = post(&off.app, Some(&token), Some("application/x-ndjson"), body).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("api.ingest_enabled"));
    // The schema URL: the file's bytes, no token needed.
    let (st, headers, bytes) = h
        .raw("GET", "/v1/schemas/audit-event.json", None, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/schema+json");
    let file = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../event/schema/audit-event.schema.json"),
    )
    .unwrap();
    assert_eq!(bytes, file);
}
