//! Authentication against a real ClickHouse (the test stack), each test in its own database:
//! the negative token cache and the limit on failed authentications (issue 13), token expiry
//! and last use (issue 14), and the admin API's validation of workspace ids and parameters.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use auditlog_query::ApiConfig;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use common::*;
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// A request from `peer` (as `auditlog serve` sees it: with the peer address).
async fn from(
    h: &Harness,
    peer: &str,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let mut req = b
        .body(
            body.map(|v| Body::from(serde_json::to_vec(&v).unwrap()))
                .unwrap_or_else(Body::empty),
        )
        .unwrap();
    let addr: SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, headers, v)
}

/// Token lookups this test's server ran in ClickHouse, from the server's own `query_log`.
async fn lookups(h: &Harness) -> u64 {
    // Another database's client, so this query is not in the count.
    let server = h.ch.server_client();
    server.query("SYSTEM FLUSH LOGS").execute().await.unwrap();
    server
        .query(
            "SELECT count() FROM system.query_log WHERE type = 'QueryFinish' \
             AND current_database = ? AND query_kind = 'Select' \
             AND query LIKE '%token_hash = %'",
        )
        .bind(&h.ch.database)
        .fetch_one::<u64>()
        .await
        .unwrap()
}

/// A well-formed secret no token has.
fn unknown_secret(i: u32) -> String {
    format!("alt_{i:0>43}")
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

// ---- the negative cache ---------------------------------------------------------------------

#[tokio::test]
async fn a_repeated_unknown_token_costs_one_lookup_per_ttl() {
    let h = Harness::with_config(
        "q_negcache",
        ApiConfig {
            unknown_token_cache: Duration::from_secs(2),
            auth_failure_burst: 0,
            ..ApiConfig::default()
        },
    )
    .await;
    let bad = unknown_secret(1);
    for _ in 0..25 {
        let (st, _, body) = from(&h, "10.9.0.1:5000", "GET", "/v1/events", Some(&bad), None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    assert_eq!(lookups(&h).await, 1, "25 tries of one unknown token");
    // After the TTL it is asked about once more.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for _ in 0..5 {
        let (st, _, _) = from(&h, "10.9.0.1:5000", "GET", "/v1/events", Some(&bad), None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(lookups(&h).await, 2);
    // Valid tokens are unaffected, and a revoked one is remembered as refused.
    let good = h.token("ws_n").await;
    let (st, _, _) = from(
        &h,
        "10.9.0.1:5000",
        "GET",
        "/v1/workspace",
        Some(&good),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    // The lookups are counted in /metrics by result.
    let (_, _, text) = h.raw("GET", "/metrics", None, None).await;
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("auditlog_api_token_lookups_total{result=\"unknown\"}")
            && text.contains("auditlog_api_token_lookups_total{result=\"valid\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn without_the_negative_cache_every_try_is_a_lookup() {
    // The counterpart of the test above: shows the query_log count sees every lookup.
    let h = Harness::with_config(
        "q_negoff",
        ApiConfig {
            unknown_token_cache: Duration::ZERO,
            auth_failure_burst: 0,
            ..ApiConfig::default()
        },
    )
    .await;
    for _ in 0..4 {
        let (st, _, _) = from(
            &h,
            "10.9.0.2:5000",
            "GET",
            "/v1/events",
            Some(&unknown_secret(2)),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(lookups(&h).await, 4);
}

// ---- the failure limit ----------------------------------------------------------------------

#[tokio::test]
async fn a_client_beyond_its_failures_gets_429_and_others_do_not() {
    let h = Harness::with_config(
        "q_limit",
        ApiConfig {
            auth_failure_burst: 3,
            auth_failure_interval: Duration::from_secs(30),
            ..ApiConfig::default()
        },
    )
    .await;
    let good = h.token("ws_l").await;
    let other_good = h.token("ws_l").await;
    let attacker = "10.1.0.1:40000";
    // Three failures (distinct unknown tokens: each a lookup), then 429 without a lookup.
    for i in 0..3 {
        let (st, _, body) = from(
            &h,
            attacker,
            "GET",
            "/v1/events",
            Some(&unknown_secret(10 + i)),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    }
    let before = lookups(&h).await;
    assert_eq!(before, 3, "one lookup per distinct unknown token");
    for i in 0..10 {
        let (st, headers, body) = from(
            &h,
            attacker,
            "GET",
            "/v1/events",
            Some(&unknown_secret(20 + i)),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
        assert!(!message(&body).is_empty());
        let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=30).contains(&wait), "Retry-After {wait}");
    }
    // Also without a token, and on the admin routes with a wrong admin token.
    let (st, _, _) = from(&h, attacker, "GET", "/v1/workspace", None, None).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    let (st, _, _) = from(
        &h,
        attacker,
        "GET",
        "/v1/admin/tokens",
        Some("wrong-admin-token-0123456789"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        lookups(&h).await,
        before,
        "a refused client costs no lookup"
    );
    // A token ClickHouse would have to verify is refused too...
    let (st, _, _) = from(
        &h,
        attacker,
        "GET",
        "/v1/workspace",
        Some(&other_good),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    // ...the same address on another port, and its IPv4-mapped IPv6 form, are the same client...
    let (st, _, _) = from(&h, "[::ffff:10.1.0.1]:1", "GET", "/v1/events", None, None).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    // ...while another client still gets 401 for a bad token and 200 for a good one.
    let bystander = "10.1.0.2:40000";
    let (st, _, body) = from(
        &h,
        bystander,
        "GET",
        "/v1/events",
        Some(&unknown_secret(99)),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    let (st, _, body) = from(&h, bystander, "GET", "/v1/workspace", Some(&good), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // A token this server verified moments ago, and the admin token, pass even from the
    // limited address (they need no ClickHouse): a NAT neighbour keeps working.
    let (st, _, body) = from(&h, attacker, "GET", "/v1/workspace", Some(&good), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _, _) = from(&h, attacker, "GET", "/v1/admin/tokens", Some(ADMIN), None).await;
    assert_eq!(st, StatusCode::OK);
    // Routes that authenticate nothing are not limited.
    let (st, _, _) = from(&h, attacker, "GET", "/health", None, None).await;
    assert_eq!(st, StatusCode::OK);
    let (_, _, text) = h.raw("GET", "/metrics", None, None).await;
    assert!(String::from_utf8(text)
        .unwrap()
        .contains("auditlog_api_auth_rate_limited_total"));
}

#[tokio::test]
async fn the_limit_refills_one_failure_per_interval() {
    let h = Harness::with_config(
        "q_refill",
        ApiConfig {
            auth_failure_burst: 2,
            auth_failure_interval: Duration::from_millis(1500),
            ..ApiConfig::default()
        },
    )
    .await;
    let peer = "[2001:db8:7:7::1]:9";
    for _ in 0..2 {
        let (st, _, _) = from(&h, peer, "GET", "/v1/events", None, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    // Same /64, another address: the same client.
    let (st, headers, _) = from(
        &h,
        "[2001:db8:7:7:abcd::2]:9",
        "GET",
        "/v1/events",
        None,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "2", "1.5 s, rounded up");
    // Another /64 is another client.
    let (st, _, _) = from(&h, "[2001:db8:7:8::1]:9", "GET", "/v1/events", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (st, _, _) = from(&h, peer, "GET", "/v1/events", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "one failure came back");
    let (st, _, _) = from(&h, peer, "GET", "/v1/events", None, None).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "and only one");
}

// ---- expiry and last use --------------------------------------------------------------------

#[tokio::test]
async fn an_expired_token_is_a_401_that_says_so() {
    let h = Harness::with_config(
        "q_expiry",
        ApiConfig {
            unknown_token_cache: Duration::ZERO,
            ..ApiConfig::default()
        },
    )
    .await;
    let (st, created) = h
        .json(
            "POST",
            "/v1/admin/tokens",
            Some(ADMIN),
            Some(json!({"workspace_id": "ws_e", "name": "short", "expires_in": "1s"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let expires_at = created["expires_at"].as_str().unwrap().to_owned();
    let t = created["token"].as_str().unwrap().to_owned();
    let (st, _) = h.json("GET", "/v1/workspace", Some(&t), None).await;
    assert_eq!(st, StatusCode::OK);
    // Expired while still in the verified-token cache (2 s): refused all the same.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (st, body) = h.json("GET", "/v1/events", Some(&t), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(message(&body).contains("expired"), "{body}");
    // Past the cache: ClickHouse says the same.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (st, body) = h.json("GET", "/v1/events", Some(&t), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(message(&body).contains("expired"), "{body}");
    // An unknown token's message does not speak of expiry.
    let (_, body) = h
        .json("GET", "/v1/events", Some(&unknown_secret(5)), None)
        .await;
    assert!(!message(&body).contains("expired"), "{body}");
    // The list shows the expiry; a token without one never expires.
    let (st, none) = h
        .json(
            "POST",
            "/v1/admin/tokens",
            Some(ADMIN),
            Some(json!({"workspace_id": "ws_e"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(none["expires_at"], Value::Null);
    let (_, list) = h
        .json(
            "GET",
            "/v1/admin/tokens?workspace_id=ws_e",
            Some(ADMIN),
            None,
        )
        .await;
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{list}");
    assert_eq!(tokens[0]["expires_at"], expires_at.as_str());
    assert_eq!(tokens[1]["expires_at"], Value::Null);
    // expires_at in RFC 3339 works too, and is kept to the millisecond.
    let at = (chrono::Utc::now() + chrono::TimeDelta::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (st, body) = h
        .json(
            "POST",
            "/v1/admin/tokens",
            Some(ADMIN),
            Some(json!({"workspace_id": "ws_e", "expires_at": at})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["expires_at"], at.as_str());
    let (st, _) = h
        .json(
            "GET",
            "/v1/workspace",
            Some(body["token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn bad_expiries_are_400_naming_the_field() {
    let h = Harness::new("q_badexp").await;
    for (body, field) in [
        (
            json!({"workspace_id": "w", "expires_in": "soon"}),
            "expires_in",
        ),
        (
            json!({"workspace_id": "w", "expires_in": "0s"}),
            "expires_in",
        ),
        (
            json!({"workspace_id": "w", "expires_in": "36501d"}),
            "expires_in",
        ),
        (
            json!({"workspace_id": "w", "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"workspace_id": "w", "expires_at": "next week"}),
            "expires_at",
        ),
        (
            json!({"workspace_id": "w", "expires_at": "2099-01-01T00:00:00Z", "expires_in": "1d"}),
            "expires_in",
        ),
        (json!({"workspace_id": "w", "expires_in": 30}), "body"),
    ] {
        let (st, resp) = h
            .json("POST", "/v1/admin/tokens", Some(ADMIN), Some(body.clone()))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_eq!(resp["error"]["code"], "bad_parameter");
        assert!(
            message(&resp).starts_with(&format!("{field}:")),
            "{body}: {resp}"
        );
    }
    let (_, list) = h.json("GET", "/v1/admin/tokens", Some(ADMIN), None).await;
    assert_eq!(list["tokens"], json!([]), "nothing was created");
}

#[tokio::test]
async fn last_use_is_recorded_at_most_once_a_minute() {
    let h = Harness::new("q_lastuse").await;
    let t = h.token("ws_u").await;
    let (_, list) = h.json("GET", "/v1/admin/tokens", Some(ADMIN), None).await;
    assert_eq!(
        list["tokens"][0]["last_used_at"],
        Value::Null,
        "never used yet"
    );
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    for _ in 0..20 {
        let (st, _) = h.json("GET", "/v1/workspace", Some(&t), None).await;
        assert_eq!(st, StatusCode::OK);
    }
    // Written in the background: wait for it.
    let mut used = Value::Null;
    for _ in 0..50 {
        let (_, list) = h.json("GET", "/v1/admin/tokens", Some(ADMIN), None).await;
        used = list["tokens"][0]["last_used_at"].clone();
        if !used.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let used = chrono::DateTime::parse_from_rfc3339(used.as_str().expect("recorded")).unwrap();
    assert!(used >= before && used <= chrono::Utc::now(), "{used}");
    // Past the verified-token cache (2 s), more uses: still one write for the minute.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for _ in 0..5 {
        let (st, _) = h.json("GET", "/v1/events", Some(&t), None).await;
        assert_eq!(st, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes: u64 = h
        .client
        .query("SELECT count() FROM api_token_uses")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(writes, 1, "25 uses within a minute");
}

// ---- admin validation -----------------------------------------------------------------------

#[tokio::test]
async fn admin_workspace_ids_follow_the_event_rule() {
    let h = Harness::new("q_adminws").await;
    for ws in [" ", "a b", "tab%09x", "nbsp%C2%A0x", "%E2%80%83"] {
        for (m, body) in [("GET", None), ("PUT", Some(json!({"plan": "pro"})))] {
            let uri = format!("/v1/admin/workspaces/{ws}/plan");
            let uri = uri.replace(' ', "%20");
            let (st, resp) = h.json(m, &uri, Some(ADMIN), body).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{m} {uri}: {resp}");
            assert!(message(&resp).starts_with("workspace_id:"), "{resp}");
        }
        let (st, resp) = h
            .json(
                "GET",
                &format!("/v1/admin/tokens?workspace_id={}", ws.replace(' ', "%20")),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{ws}: {resp}");
        assert!(message(&resp).starts_with("workspace_id:"), "{resp}");
    }
    for ws in ["", " ", "a b", "a\tb", "a\u{2003}b", &"w".repeat(257)] {
        let (st, resp) = h
            .json(
                "POST",
                "/v1/admin/tokens",
                Some(ADMIN),
                Some(json!({"workspace_id": ws})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{ws:?}: {resp}");
        assert!(message(&resp).starts_with("workspace_id:"), "{resp}");
    }
    let (_, list) = h.json("GET", "/v1/admin/tokens", Some(ADMIN), None).await;
    assert_eq!(list["tokens"], json!([]));
    let plans: u64 = h
        .client
        .query("SELECT count() FROM workspace_plans")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(plans, 0);
    // The same ids an event may carry are fine.
    let (st, _) = h
        .json(
            "PUT",
            "/v1/admin/workspaces/ws-%C3%A9:1/plan",
            Some(ADMIN),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn admin_endpoints_reject_unknown_parameters() {
    let h = Harness::new("q_adminparams").await;
    h.token("ws_p").await;
    let (_, list) = h.json("GET", "/v1/admin/tokens", Some(ADMIN), None).await;
    let id = list["tokens"][0]["token_id"].as_str().unwrap().to_owned();
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        (
            "GET",
            "/v1/admin/workspaces/ws_p/plan?verbose=1".into(),
            None,
        ),
        (
            "PUT",
            "/v1/admin/workspaces/ws_p/plan?dry_run=true".into(),
            Some(json!({"plan": "pro"})),
        ),
        (
            "POST",
            "/v1/admin/tokens?expires=1d".into(),
            Some(json!({"workspace_id": "ws_p"})),
        ),
        ("GET", "/v1/admin/tokens?workspace=ws_p".into(), None),
        ("DELETE", format!("/v1/admin/tokens/{id}?force=1"), None),
    ];
    for (m, uri, body) in cases {
        let (st, resp) = h.json(m, &uri, Some(ADMIN), body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{m} {uri}: {resp}");
        assert_eq!(resp["error"]["code"], "bad_parameter");
        let param = uri.split('?').nth(1).unwrap().split('=').next().unwrap();
        assert!(message(&resp).starts_with(&format!("{param}:")), "{resp}");
    }
    // Nothing happened: no plan, one token, not revoked.
    let (_, plan) = h
        .json("GET", "/v1/admin/workspaces/ws_p/plan", Some(ADMIN), None)
        .await;
    assert_eq!(plan["plan"], "free");
    let (_, list) = h.json("GET", "/v1/admin/tokens", Some(ADMIN), None).await;
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(list["tokens"][0]["revoked_at"], Value::Null);
    // A repeated parameter is refused too.
    let (st, resp) = h
        .json(
            "GET",
            "/v1/admin/tokens?workspace_id=a&workspace_id=b",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(message(&resp).contains("more than once"), "{resp}");
}
