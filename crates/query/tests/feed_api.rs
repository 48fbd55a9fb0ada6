//! `GET /v1/feed` through the real app against a real ClickHouse (the test stack), each test in
//! its own database. Modules: following, starts, expiry, parameters, wait, formats.

mod common;

/// "Within a second" (200 ms polls plus a page read) measured on a CI machine running many
/// tests at once: up to 2 s.
const LOADED_MACHINE_SLACK: std::time::Duration = std::time::Duration::from_secs(2);

use std::collections::HashSet;
use std::time::{Duration, Instant};

use auditlog_formats::Format;
use auditlog_query::cursor::CursorKey;
use auditlog_query::feed::cursor::FeedCursor;
use auditlog_query::{ApiConfig, Dedup, Filter, Reader};
use auditlog_store::feed::FeedPosition;
use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};

const SECRET: &str = "feed-cursor-secret-for-tests";

async fn harness(prefix: &str) -> Harness {
    Harness::with_config(
        prefix,
        ApiConfig {
            cursor_secret: SECRET.into(),
            ..ApiConfig::default()
        },
    )
    .await
}

/// One feed response: status, `data` as raw JSON texts, `next_cursor`.
async fn get(
    h: &Harness,
    token: &str,
    uri: &str,
) -> (StatusCode, Vec<String>, Option<String>, Value) {
    let (st, _, bytes) = h.raw("GET", uri, Some(token), None).await;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if st != StatusCode::OK {
        return (st, Vec::new(), None, v);
    }
    // The raw items: the body is `{"data":[...],"next_cursor":"..."}` as written.
    let items = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect();
    let cursor = v["next_cursor"].as_str().map(str::to_owned);
    (st, items, cursor, v)
}

/// Follows the feed until an empty page; returns the event ids and every cursor handed out.
async fn walk(h: &Harness, token: &str, first: &str) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut cursors = Vec::new();
    let mut uri = first.to_owned();
    loop {
        let (st, _, cursor, v) = get(h, token, &uri).await;
        assert_eq!(st, StatusCode::OK, "{uri}: {v}");
        let cursor = cursor.expect("next_cursor is always present");
        let data = v["data"].as_array().unwrap();
        ids.extend(
            data.iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned()),
        );
        cursors.push(cursor.clone());
        if data.is_empty() {
            return (ids, cursors);
        }
        let base = first.split('?').next().unwrap();
        let filters: Vec<&str> = first
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .filter(|kv| !kv.starts_with("start=") && !kv.starts_with("cursor="))
                    .collect()
            })
            .unwrap_or_default();
        let mut q = filters.join("&");
        if !q.is_empty() {
            q.push('&');
        }
        uri = format!("{base}?{q}cursor={cursor}");
    }
}

// ---- following -----------------------------------------------------------------------------

#[tokio::test]
async fn following_the_cursor_returns_every_event_once_as_the_detail_body() {
    let h = harness("feedapi_follow").await;
    let token = h.token("ws").await;
    let now = now_ms();
    let rows: Vec<Seed> = (0..23)
        .map(|i| at("ws", 0, i, now - (i % 5) * 3_600_000))
        .collect();
    h.seed(&rows).await;
    h.seed(&[at("ws_other", 0, 100, now)]).await;
    let (ids, cursors) = walk(&h, &token, "/v1/feed?limit=4").await;
    let want: Vec<String> = rows.iter().map(|s| s.event_id.to_string()).collect();
    assert_eq!(ids, want, "offset order, once, this workspace only");
    // Each item (format json) is the detail body, byte for byte (payload text as stored, even
    // what a JSON number type cannot hold).
    let raw_token = h.token("ws_raw").await;
    let mut odd = at("ws_raw", 0, 1, now);
    odd.request = r#"{"big":18446744073709551617,"f":1e400, "sp" : [1,2]}"#.into();
    h.seed(&[at("ws_raw", 0, 0, now), odd.clone()]).await;
    let (_, _, detail) = h
        .raw(
            "GET",
            &format!("/v1/events/{}", odd.event_id),
            Some(&raw_token),
            None,
        )
        .await;
    let (st, _, raw) = h.raw("GET", "/v1/feed", Some(&raw_token), None).await;
    assert_eq!(st, StatusCode::OK);
    let raw = String::from_utf8(raw).unwrap();
    assert!(raw.starts_with(r#"{"data":[{"#), "{raw}");
    assert!(
        raw.contains(&format!(
            "}},{}],\"next_cursor\":\"",
            std::str::from_utf8(&detail).unwrap()
        )),
        "{raw}"
    );
    // Late events arrive after the run: every cursor of it resumes exactly at its place.
    let late: Vec<Seed> = (0..6)
        .map(|i| at("ws", 0, 50 + i, now - 48 * 3_600_000))
        .collect();
    h.seed(&late).await;
    let all: Vec<String> = want
        .iter()
        .cloned()
        .chain(late.iter().map(|s| s.event_id.to_string()))
        .collect();
    for (i, c) in cursors.iter().enumerate() {
        let (rest, _) = walk(&h, &token, &format!("/v1/feed?limit=7&cursor={c}")).await;
        let done = ((i + 1) * 4).min(23);
        assert_eq!(rest, all[done..], "from cursor {i}");
    }
}

#[tokio::test]
async fn filters_are_the_lists_and_bind_the_cursor() {
    let h = harness("feedapi_filter").await;
    let token = h.token("ws").await;
    let now = now_ms();
    let rows: Vec<Seed> = (0..12)
        .map(|i| {
            let mut s = at("ws", 0, i, now);
            s.event = if i % 3 == 0 {
                "api.create"
            } else {
                "key.create"
            }
            .into();
            s
        })
        .collect();
    h.seed(&rows).await;
    let (ids, cursors) = walk(&h, &token, "/v1/feed?event=api.*&limit=2").await;
    let want: Vec<String> = rows
        .iter()
        .filter(|s| s.event == "api.create")
        .map(|s| s.event_id.to_string())
        .collect();
    assert_eq!(ids, want);
    // The cursor of a filtered feed does not continue another.
    let (st, _, _, v) = get(&h, &token, &format!("/v1/feed?cursor={}", cursors[0])).await;
    assert_eq!(
        (st, v["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("bad_cursor"))
    );
    // Nor another workspace's feed.
    let other = h.token("ws_2").await;
    let (st, _, _, _) = get(
        &h,
        &other,
        &format!("/v1/feed?event=api.*&cursor={}", cursors[0]),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

// ---- starts --------------------------------------------------------------------------------

#[tokio::test]
async fn starts_at_the_beginning_now_or_a_store_time() {
    let h = harness("feedapi_start").await;
    let token = h.token("ws").await;
    let now = now_ms();
    let old: Vec<Seed> = (0..3).map(|i| at("ws", 0, i, now)).collect();
    h.seed(&old).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let t = auditlog_query::filter::rfc3339_ms(now_ms());
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (_, _, from_now, _) = get(&h, &token, "/v1/feed?start=now").await;
    let new: Vec<Seed> = (0..2)
        .map(|i| at("ws", 0, 10 + i, now - 3_600_000))
        .collect();
    h.seed(&new).await;
    let new_ids: Vec<String> = new.iter().map(|s| s.event_id.to_string()).collect();
    let (ids, _) = walk(
        &h,
        &token,
        &format!("/v1/feed?cursor={}", from_now.unwrap()),
    )
    .await;
    assert_eq!(ids, new_ids, "start=now: only what came after");
    let (ids, _) = walk(&h, &token, &format!("/v1/feed?start={}", enc(&t))).await;
    assert_eq!(ids, new_ids, "start=<time>: stored at or after it");
    let (ids, _) = walk(&h, &token, "/v1/feed?start=beginning").await;
    assert_eq!(ids.len(), 5);
    let (ids, _) = walk(&h, &token, "/v1/feed").await;
    assert_eq!(ids.len(), 5, "beginning is the default");
}

// ---- expiry --------------------------------------------------------------------------------

#[tokio::test]
async fn a_cursor_older_than_retention_is_410_unless_retention_is_unlimited() {
    let h = harness("feedapi_expiry").await;
    let token = h.token("ws").await;
    let key = CursorKey::new(SECRET);
    let fp = Filter::default().fingerprint("ws");
    let cursor = |age_days: i64| {
        FeedCursor {
            position: FeedPosition {
                offsets: [(0, 5)].into(),
            },
            fingerprint: fp,
            issued_ms: now_ms() - age_days * DAY_MS,
        }
        .encode(&key)
        .unwrap()
    };
    // Free plan: 7 days.
    let (st, _, _, _) = get(&h, &token, &format!("/v1/feed?cursor={}", cursor(6))).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _, v) = get(&h, &token, &format!("/v1/feed?cursor={}", cursor(8))).await;
    assert_eq!(st, StatusCode::GONE, "{v}");
    assert_eq!(v["error"]["code"], "cursor_expired");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("start=") && msg.contains("7 days"), "{msg}");
    // Unlimited retention: never expires.
    let (st, _) = h
        .json(
            "PUT",
            "/v1/admin/workspaces/ws/plan",
            Some(ADMIN),
            Some(json!({"plan": "enterprise", "unlimited": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _, _) = get(&h, &token, &format!("/v1/feed?cursor={}", cursor(4000))).await;
    assert_eq!(st, StatusCode::OK);
}

// ---- parameters ----------------------------------------------------------------------------

#[tokio::test]
async fn bad_parameters_are_400_naming_them() {
    let h = harness("feedapi_params").await;
    let token = h.token("ws").await;
    let (_, _, good, _) = get(&h, &token, "/v1/feed").await;
    let good = good.unwrap();
    for (q, param, code) in [
        ("limit=0", "limit", "bad_parameter"),
        ("limit=1001", "limit", "bad_parameter"),
        ("wait=31", "wait", "bad_parameter"),
        ("wait=soon", "wait", "bad_parameter"),
        ("start=yesterday", "start", "bad_parameter"),
        ("format=xml", "format", "bad_parameter"),
        ("since=2026-01-01T00:00:00Z", "since", "bad_parameter"),
        ("until=2026-01-01T00:00:00Z", "until", "bad_parameter"),
        ("order=asc", "order", "bad_parameter"),
        ("actor_type=robot", "actor_type", "bad_parameter"),
        ("cursor=not-a-cursor", "cursor", "bad_cursor"),
    ] {
        let (st, _, _, v) = get(&h, &token, &format!("/v1/feed?{q}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["error"]["code"], code, "{q}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{param}:")), "{q}: {msg}");
    }
    let (st, _, _, v) = get(&h, &token, &format!("/v1/feed?start=now&cursor={good}")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("start") && msg.contains("cursor"), "{msg}");
    let (st, _, _) = h.raw("GET", "/v1/feed", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

// ---- wait ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_long_poll_returns_new_events_within_a_second_and_nothing_after_the_wait() {
    // A short query deadline: the wait must not count against it.
    let h = Harness::with_config(
        "feedapi_wait",
        ApiConfig {
            cursor_secret: SECRET.into(),
            query_timeout: Duration::from_secs(1),
            health_timeout: Duration::from_millis(500),
            ..ApiConfig::default()
        },
    )
    .await;
    let token = h.token("ws").await;
    h.seed(&[at("ws", 0, 0, now_ms())]).await;
    let (_, _, cursor, _) = get(&h, &token, "/v1/feed").await;
    let cursor = cursor.unwrap();
    // Nothing new: empty after the wait (longer than the query deadline), with a cursor.
    let t = Instant::now();
    let (st, items, next, v) = get(&h, &token, &format!("/v1/feed?wait=2&cursor={cursor}")).await;
    let took = t.elapsed();
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(items.is_empty() && next.is_some());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
    // Events arriving during the wait: returned within about a second of becoming visible.
    let client = h.client.clone();
    let row = at("ws", 0, 1, now_ms() - 3_600_000);
    let id = row.event_id.to_string();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        auditlog_store::events::insert(&client, &[row], "wait-test")
            .await
            .unwrap();
        Instant::now()
    });
    let (st, _, _, v) = get(&h, &token, &format!("/v1/feed?wait=20&cursor={cursor}")).await;
    let answered = Instant::now();
    let visible = writer.await.unwrap();
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"][0]["event_id"], id.as_str());
    assert!(
        answered - visible < LOADED_MACHINE_SLACK,
        "{:?}",
        answered - visible
    );
}

// ---- formats -------------------------------------------------------------------------------

#[tokio::test]
async fn the_format_parameter_selects_the_rendering() {
    let h = harness("feedapi_formats").await;
    let token = h.token("ws").await;
    let rows: Vec<Seed> = (0..3).map(|i| at("ws", 0, i, now_ms())).collect();
    h.seed(&rows).await;
    let reader = Reader::new(h.client.clone(), Dedup::LimitBy, Duration::from_secs(10));
    let page = reader
        .feed_page("ws", &Filter::default(), &FeedPosition::beginning(), 10)
        .await
        .unwrap();
    let mut seen = HashSet::new();
    for format in [Format::Ocsf, Format::Ecs] {
        let (_, _, raw) = h
            .raw(
                "GET",
                &format!("/v1/feed?format={}", format.as_str()),
                Some(&token),
                None,
            )
            .await;
        let raw = String::from_utf8(raw).unwrap();
        for item in &page.items {
            let want =
                auditlog_formats::render(format, &item.event.to_event(), item.event.inserted_ms)
                    .unwrap();
            assert!(
                raw.contains(std::str::from_utf8(&want).unwrap()),
                "{format:?}: {raw}"
            );
        }
        seen.insert(raw);
    }
    let (_, _, json_raw) = h
        .raw("GET", "/v1/feed?format=json", Some(&token), None)
        .await;
    let (_, _, default_raw) = h.raw("GET", "/v1/feed", Some(&token), None).await;
    let strip = |b: Vec<u8>| -> Value {
        let mut v: Value = serde_json::from_slice(&b).unwrap();
        v["next_cursor"] = Value::Null;
        v
    };
    assert_eq!(strip(json_raw), strip(default_raw), "json is the default");
}

#[tokio::test]
async fn a_long_poll_outlasts_the_connection_idle_timeout_on_a_real_listener() {
    use auditlog_query::api::serve::{serve, Limits};
    let h = harness("feedapi_idle").await;
    let token = h.token("ws").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        max_connections: 8,
        shutdown_timeout: Duration::from_secs(1),
        listener: "api",
    };
    let server = tokio::spawn(serve(
        listener,
        h.app.clone(),
        limits,
        std::future::pending(),
    ));
    // The idle timeout applies between requests, not while one waits.
    let t = Instant::now();
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/v1/feed?start=now&wait=3"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(body["data"], json!([]));
    assert!(body["next_cursor"].is_string());
    server.abort();
}
