//! The stream endpoints against the real ClickHouse (the app driven in-process): the admin
//! lifecycle (create, list, get, pause, resume, replay, rotate-secret, delete), credentials
//! never shown after creation, the workspace's own list with statuses, and bad input (every
//! error a 4xx naming the field, never a 500).

mod common;

use auditlog_streams::{State, StreamStatus, StreamStore};
use axum::http::StatusCode;
use common::{Harness, ADMIN};
use serde_json::{json, Value};

fn webhook(ws: &str) -> Value {
    json!({
        "workspace_id": ws,
        "name": "siem",
        "destination": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
        "format": "ocsf",
        "filter": {"event": "key.*", "outcome": "failure"},
        "start": "beginning"
    })
}

const HEC_TOKEN: &str = "hec-token-3f1c9a7e-secret";

fn splunk(ws: &str) -> Value {
    json!({
        "workspace_id": ws,
        "destination": {"type": "splunk_hec", "url": "https://splunk.example:8088", "token": HEC_TOKEN, "index": "audit"}
    })
}

async fn create(h: &Harness, body: Value) -> Value {
    let (st, v) = h
        .json("POST", "/v1/admin/streams", Some(ADMIN), Some(body))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

/// Checks `v` against the served OpenAPI document's schema `name` (the document describes what
/// the API writes).
fn conforms(name: &str, v: &Value) {
    let doc = auditlog_query::api::openapi::document_json();
    let schema = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
    assert!(
        !validator.is_valid(&json!({"stream_id": 5})),
        "{name} checks something"
    );
    let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {v}: {errors:?}");
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn a_stream_goes_through_its_whole_life() {
    let h = Harness::new("api_streams_life").await;
    let created = create(&h, webhook("ws_a")).await;
    let id = created["stream_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("str_"), "{created}");
    assert_eq!(
        keys(&created),
        [
            "created_at_ms",
            "desired",
            "destination",
            "filter",
            "format",
            "generation",
            "name",
            "paused_reason",
            "secret",
            "secrets",
            "status",
            "stream_id",
            "updated_at_ms",
            "workspace_id"
        ]
    );
    conforms("StreamWithSecret", &created);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["desired"], "active");
    assert_eq!(created["format"], "ocsf");
    assert_eq!(created["generation"], 0);
    assert!(created["status"].is_null());
    assert_eq!(
        created["filter"],
        json!({"event": "key.*", "outcome": "failure"})
    );
    // The secret is shown once: in the stream's own fields it is redacted.
    let shown = created["secrets"][0]["secret"].as_str().unwrap();
    assert!(
        shown.starts_with("****") && !secret.starts_with(shown),
        "{shown}"
    );
    assert!(secret.ends_with(&shown[4..]));

    let (st, got) = h
        .json("GET", &format!("/v1/admin/streams/{id}"), Some(ADMIN), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{got}");
    assert!(!got.to_string().contains(&secret));
    assert!(got.get("secret").is_none());
    conforms("StreamInfo", &got);
    let (st, listed) = h
        .json(
            "GET",
            "/v1/admin/streams?workspace_id=ws_a",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(listed["streams"].as_array().unwrap().len(), 1);
    assert_eq!(listed["streams"][0], got);
    let (_, other) = h
        .json(
            "GET",
            "/v1/admin/streams?workspace_id=ws_b",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(other, json!({"streams": []}));

    let post = |path: &'static str, body: Option<Value>| {
        let uri = format!("/v1/admin/streams/{id}/{path}");
        let h = &h;
        async move { h.json("POST", &uri, Some(ADMIN), body).await }
    };
    let (st, paused) = post("pause", None).await;
    assert_eq!((st, &paused["desired"]), (StatusCode::OK, &json!("paused")));
    let (st, resumed) = post("resume", None).await;
    assert_eq!(
        (st, &resumed["desired"]),
        (StatusCode::OK, &json!("active"))
    );
    let (st, replayed) = post("replay", Some(json!({"from": "2026-01-01T00:00:00Z"}))).await;
    assert_eq!(st, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["generation"], 1);
    let store = StreamStore::new(h.client.clone());
    let cursor = store.cursors(std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(
        cursor[0].start,
        auditlog_store::FeedStart::Time(1_767_225_600_000)
    );

    let (st, rotated) = post("rotate-secret", Some(json!({"keep_old_for": "1h"}))).await;
    assert_eq!(st, StatusCode::OK, "{rotated}");
    conforms("StreamWithSecret", &rotated);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert_eq!(rotated["secrets"].as_array().unwrap().len(), 2);
    assert!(!rotated["secrets"].to_string().contains(&secret));
    // Without a body: the default grace (24 h).
    let (st, again) = post("rotate-secret", None).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    let stored = store.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.secrets.len(), 3);
    let old = &stored.secrets[1];
    assert_eq!(
        old.expires_at_ms,
        Some(stored.updated_at_ms + 24 * 3_600_000)
    );

    let (st, _) = h
        .json(
            "DELETE",
            &format!("/v1/admin/streams/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = h
        .json(
            "DELETE",
            &format!("/v1/admin/streams/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "deleting again is fine");
    for (method, path) in [
        ("GET", format!("/v1/admin/streams/{id}")),
        ("POST", format!("/v1/admin/streams/{id}/pause")),
        ("POST", format!("/v1/admin/streams/{id}/resume")),
        ("POST", format!("/v1/admin/streams/{id}/rotate-secret")),
    ] {
        let (st, body) = h.json(method, &path, Some(ADMIN), None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (_, listed) = h.json("GET", "/v1/admin/streams", Some(ADMIN), None).await;
    assert_eq!(listed, json!({"streams": []}));
}

#[tokio::test]
async fn credentials_are_stored_but_never_shown() {
    let h = Harness::new("api_streams_creds").await;
    let created = create(&h, splunk("ws_a")).await;
    let id = created["stream_id"].as_str().unwrap().to_owned();
    assert!(
        created["secret"].is_null(),
        "only webhooks have a signing secret"
    );
    assert_eq!(created["secrets"], json!([]));
    assert_eq!(created["destination"]["token"], "****cret");
    for uri in [
        format!("/v1/admin/streams/{id}"),
        "/v1/admin/streams".to_owned(),
    ] {
        let (_, v) = h.json("GET", &uri, Some(ADMIN), None).await;
        assert!(!v.to_string().contains(HEC_TOKEN), "{v}");
    }
    let token = h.token("ws_a").await;
    let (_, v) = h.json("GET", "/v1/streams", Some(&token), None).await;
    assert!(!v.to_string().contains(HEC_TOKEN), "{v}");
    // The worker reads it in clear.
    let stored = StreamStore::new(h.client.clone())
        .get(&id)
        .await
        .unwrap()
        .unwrap();
    assert!(serde_json::to_string(&stored).unwrap().contains(HEC_TOKEN));
    // A rotation is for webhooks only.
    let (st, v) = h
        .json(
            "POST",
            &format!("/v1/admin/streams/{id}/rotate-secret"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("destination:"),
        "{v}"
    );
}

#[tokio::test]
async fn a_workspace_sees_its_own_streams_with_their_status() {
    let h = Harness::new("api_streams_ws").await;
    let a = create(&h, webhook("ws_a")).await;
    create(&h, splunk("ws_b")).await;
    let token = h.token("ws_a").await;
    let (st, v) = h.json("GET", "/v1/streams", Some(&token), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["stream_id"], a["stream_id"]);
    assert!(data[0]["status"].is_null());
    assert!(data[0].get("secret").is_none());

    let id = a["stream_id"].as_str().unwrap();
    let status = StreamStatus {
        stream_id: id.into(),
        state: State::Failing,
        last_error: "HTTP 503 from 127.0.0.1:9".into(),
        last_error_at_ms: Some(1_767_225_600_000),
        failing_since_ms: Some(1_767_225_500_000),
        delivered_events: 120,
        delivered_batches: 3,
        failed_attempts: 4,
        redelivered_events: 10,
        lag_events: 7,
        lag_seconds: 2.5,
        worker_id: "w1".into(),
        updated_at_ms: 1_767_225_600_001,
    };
    StreamStore::new(h.client.clone())
        .save_statuses(std::slice::from_ref(&status))
        .await
        .unwrap();
    let (_, v) = h.json("GET", "/v1/streams", Some(&token), None).await;
    assert_eq!(
        v["data"][0]["status"],
        serde_json::to_value(&status).unwrap()
    );
    assert_eq!(v["data"][0]["status"]["state"], "failing");
    conforms("WorkspaceStreams", &v);

    // Workspace tokens cannot use the admin endpoints, nor parameters here.
    let (st, _) = h.json("GET", "/v1/admin/streams", Some(&token), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = h
        .json("GET", "/v1/streams?workspace_id=ws_b", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, _) = h.json("GET", "/v1/streams", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// A body with `patch` merged into the webhook body (`null` removes a key).
fn with(patch: Value) -> Value {
    let mut b = webhook("ws_a");
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            b.as_object_mut().unwrap().remove(k);
        } else {
            b[k] = v.clone();
        }
    }
    b
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_the_field() {
    let h = Harness::new("api_streams_bad").await;
    let s3 = |window: Value| {
        json!({"type": "s3", "endpoint": "http://127.0.0.1:9000", "bucket": "audit", "region": "us-east-1",
               "access_key_id": "a", "secret_access_key": "b", "window_seconds": window})
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(json!({"destination": {"type": "webhook", "url": "http://hooks.example.com/"}})),
            "destination.url",
        ),
        (
            with(json!({"destination": {"type": "webhook", "url": "not a url"}})),
            "destination.url",
        ),
        (
            with(json!({"destination": {"type": "webhook"}})),
            "destination",
        ),
        (
            with(json!({"destination": {"type": "pigeon", "url": "https://x"}})),
            "destination.type",
        ),
        (
            with(
                json!({"destination": {"type": "webhook", "url": "https://x.example", "secret": "mine"}}),
            ),
            "destination.secret",
        ),
        (
            with(json!({"destination": s3(json!(5))})),
            "destination.window_seconds",
        ),
        (with(json!({"destination": s3(json!(-1))})), "destination"),
        (
            with(json!({"destination": s3(json!("60s"))})),
            "destination",
        ),
        (
            with(
                json!({"destination": {"type": "datadog", "url": "https://dd.example", "api_key": ""}}),
            ),
            "destination.api_key",
        ),
        (
            with(json!({"filter": {"since": "2026-01-01T00:00:00Z"}})),
            "filter.since",
        ),
        (with(json!({"filter": {"actor": "x"}})), "filter.actor"),
        (with(json!({"filter": {"outcome": "ok"}})), "filter.outcome"),
        (with(json!({"filter": {"event": 5}})), "filter.event"),
        (with(json!({"format": "xml"})), "format"),
        (with(json!({"start": "yesterday"})), "start"),
        (with(json!({"workspace_id": "ws a"})), "workspace_id"),
        (with(json!({"workspace_id": null})), "body"),
        (with(json!({"name": "n".repeat(300)})), "name"),
        (with(json!({"colour": "blue"})), "colour"),
        (json!([1, 2]), "body"),
        (json!("x"), "body"),
    ];
    for (body, field) in cases {
        let (st, v) = h
            .json("POST", "/v1/admin/streams", Some(ADMIN), Some(body.clone()))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{body}: {message}"
        );
    }
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20));
    for raw in [
        &b""[..],
        b"{",
        b"\xff\xfe",
        b"{\"workspace_id\": 1e999}",
        huge.as_bytes(),
    ] {
        let (st, _, body) = h
            .raw("POST", "/v1/admin/streams", Some(ADMIN), Some(raw.to_vec()))
            .await;
        assert_eq!(
            st,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let (_, listed) = h.json("GET", "/v1/admin/streams", Some(ADMIN), None).await;
    assert_eq!(listed, json!({"streams": []}), "nothing was created");

    // Replay and rotation bodies.
    let id = create(&h, webhook("ws_a")).await["stream_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (path, body, field) in [
        ("replay", Some(json!({"from": "last week"})), "from"),
        ("replay", Some(json!({})), "body"),
        ("replay", None, "body"),
        (
            "rotate-secret",
            Some(json!({"keep_old_for": "forever"})),
            "keep_old_for",
        ),
        (
            "rotate-secret",
            Some(json!({"keep_old_for": "90d"})),
            "keep_old_for",
        ),
        ("rotate-secret", Some(json!({"keep": "1h"})), "keep"),
    ] {
        let uri = format!("/v1/admin/streams/{id}/{path}");
        let (st, v) = h.json("POST", &uri, Some(ADMIN), body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path} {body:?}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{path}: {message}"
        );
    }
    // Unknown ids are 404 everywhere; odd ids are never a 500.
    for id in ["str_nope", "%00", "a%2Fb", &"x".repeat(300)] {
        for (method, suffix, body) in [
            ("GET", "", None),
            ("DELETE", "", None),
            ("POST", "/pause", None),
            ("POST", "/resume", None),
            ("POST", "/replay", Some(json!({"from": "now"}))),
            ("POST", "/rotate-secret", None),
        ] {
            let uri = format!("/v1/admin/streams/{id}{suffix}");
            let (st, v) = h.json(method, &uri, Some(ADMIN), body).await;
            assert!(
                st == StatusCode::NOT_FOUND || st == StatusCode::BAD_REQUEST,
                "{method} {uri}: {st} {v}"
            );
            if id == "str_nope" {
                assert_eq!(st, StatusCode::NOT_FOUND, "{method} {uri}");
            }
        }
    }
    // No admin token, no stream.
    let (st, _) = h
        .json("POST", "/v1/admin/streams", None, Some(webhook("ws_a")))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = h
        .json(
            "POST",
            "/v1/admin/streams?x=1",
            Some(ADMIN),
            Some(webhook("ws_a")),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}
