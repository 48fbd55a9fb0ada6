//! The HTTP API against a real ClickHouse (the test stack), each test in its own database.
//! Modules: filters, pagination, retention, isolation, hostile input, export, contract.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use auditlog_query::ApiConfig;
use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};

// ---- filters -------------------------------------------------------------------------------

/// A fixed data set in workspace `ws_f` (and noise in `ws_other`) with unique times.
fn filter_data(now: i64) -> Vec<Seed> {
    let mut rows = Vec::new();
    let kinds = [
        "key.create",
        "key.delete",
        "api.create",
        "permission.create",
        "role.update",
    ];
    for i in 0..60i64 {
        let mut s = Seed::new(
            "ws_f",
            kinds[i as usize % kinds.len()],
            now - (i + 1) * 3_600_000,
        );
        s.actor_type = ["user", "root_key", "system"][i as usize % 3].into();
        s.actor_id = format!("actor_{}", i % 4);
        s.bucket = if i % 5 == 0 {
            "billing".into()
        } else {
            "default".into()
        };
        s.correlation_id = if i % 6 == 0 {
            "corr_A".into()
        } else {
            String::new()
        };
        if i % 7 == 0 {
            s.outcome = "failure".into();
            s.failure_reason = "denied".into();
        }
        s.description = if i % 8 == 0 {
            format!("Rotated the PRODUCTION Key number {i}")
        } else {
            format!("routine change {i}")
        };
        let tid = format!("t_{}", i % 3);
        if i % 2 == 0 {
            s.set_targets(&[("key", &tid), ("api", "api_1")]);
        } else {
            s.set_targets(&[("api", &tid)]);
        }
        rows.push(s);
    }
    for i in 0..10 {
        rows.push(Seed::new("ws_other", "key.create", now - i * 1000));
    }
    rows
}

#[tokio::test]
async fn each_filter_alone_and_combined() {
    let h = Harness::new("q_filters").await;
    let now = now_ms();
    let rows = filter_data(now);
    h.seed(&rows).await;
    let token = h.token("ws_f").await;
    let ws: Vec<&Seed> = rows.iter().filter(|s| s.workspace_id == "ws_f").collect();
    let has_target = |s: &Seed, t: Option<&str>, id: Option<&str>| {
        s.target_types
            .iter()
            .zip(&s.target_ids)
            .any(|(a, b)| t.is_none_or(|t| t == a) && id.is_none_or(|i| i == b))
    };
    let since = now - 20 * 3_600_000;
    let until = now - 5 * 3_600_000;
    type Pred = Box<dyn Fn(&Seed) -> bool>;
    let cases: Vec<(String, Pred)> = vec![
        ("".into(), Box::new(|_| true)),
        (
            "event=key.create".into(),
            Box::new(|s| s.event == "key.create"),
        ),
        (
            "event=key.create,role.update".into(),
            Box::new(|s| s.event == "key.create" || s.event == "role.update"),
        ),
        (
            "event=key.*".into(),
            Box::new(|s| s.event.starts_with("key.")),
        ),
        (
            "event=key.*,api.create".into(),
            Box::new(|s| s.event.starts_with("key.") || s.event == "api.create"),
        ),
        (
            "actor_type=root_key".into(),
            Box::new(|s| s.actor_type == "root_key"),
        ),
        (
            "actor_id=actor_2".into(),
            Box::new(|s| s.actor_id == "actor_2"),
        ),
        (
            "target_type=key".into(),
            Box::new(move |s| has_target(s, Some("key"), None)),
        ),
        (
            "target_id=t_1".into(),
            Box::new(move |s| has_target(s, None, Some("t_1"))),
        ),
        (
            "target_type=api&target_id=t_1".into(),
            Box::new(move |s| has_target(s, Some("api"), Some("t_1"))),
        ),
        ("bucket=billing".into(), Box::new(|s| s.bucket == "billing")),
        (format!("since={since}"), Box::new(move |s| s.time >= since)),
        (
            format!(
                "since={}&until={}",
                enc(&auditlog_query::filter::rfc3339_ms(since)),
                until
            ),
            Box::new(move |s| s.time >= since && s.time < until),
        ),
        (
            "correlation_id=corr_A".into(),
            Box::new(|s| s.correlation_id == "corr_A"),
        ),
        (
            "outcome=failure".into(),
            Box::new(|s| s.outcome == "failure"),
        ),
        (
            "outcome=success".into(),
            Box::new(|s| s.outcome == "success"),
        ),
        (
            "q=production%20KEY".into(),
            Box::new(|s| s.description.to_lowercase().contains("production key")),
        ),
        (
            "event=key.*&actor_type=user&outcome=success&bucket=default".into(),
            Box::new(|s| {
                s.event.starts_with("key.")
                    && s.actor_type == "user"
                    && s.outcome == "success"
                    && s.bucket == "default"
            }),
        ),
        (
            format!("target_id=t_0&q=rotated&since={since}"),
            Box::new(move |s| {
                has_target(s, None, Some("t_0"))
                    && s.description.to_lowercase().contains("rotated")
                    && s.time >= since
            }),
        ),
        ("actor_id=nobody".into(), Box::new(|_| false)),
    ];
    for (q, pred) in &cases {
        let want: Vec<&Seed> = ws.iter().copied().filter(|s| pred(s)).collect();
        let got = h.walk(&token, &format!("/v1/events?limit=7&{q}")).await;
        assert_eq!(ids(&got), expected(&want), "list {q}");
        let mut asc = expected(&want);
        asc.reverse();
        let got = h
            .walk(&token, &format!("/v1/events?order=asc&limit=1000&{q}"))
            .await;
        assert_eq!(ids(&got), asc, "asc {q}");
        let (st, body) = h
            .json("GET", &format!("/v1/event-counts?{q}"), Some(&token), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let mut want_counts = std::collections::HashMap::new();
        for s in &want {
            *want_counts.entry(s.event.clone()).or_insert(0u64) += 1;
        }
        assert_eq!(counts(&body), want_counts, "counts {q}");
    }
    // The list event is the wire format without payloads; the detail has them.
    let got = h
        .walk(&token, "/v1/events?limit=1000&correlation_id=corr_A")
        .await;
    let first = &got[0];
    assert!(first.get("request").is_none() && first.get("response").is_none());
    assert_eq!(first["workspace_id"], "ws_f");
    let id = first["event_id"].as_str().unwrap();
    let (st, detail) = h
        .json("GET", &format!("/v1/events/{id}"), Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(detail["request"], json!({"a": 1}));
    assert_eq!(detail["response"], json!({"ok": true}));
    assert!(detail["inserted_at"].as_str().unwrap().ends_with('Z'));
    let seed = ws.iter().find(|s| s.event_id.to_string() == id).unwrap();
    let mut d = detail.clone();
    d.as_object_mut().unwrap().remove("inserted_at");
    let event: auditlog_event::AuditEvent = serde_json::from_value(d).unwrap();
    assert_eq!(event.time.timestamp_millis(), seed.time);
    assert_eq!(event.targets.len(), seed.target_ids.len());
}

// ---- pagination -----------------------------------------------------------------------------

#[tokio::test]
async fn cursor_walk_is_complete_while_events_arrive() {
    let h = Harness::new("q_walk").await;
    let now = now_ms();
    // 3000 events over the last 3 days, some sharing a millisecond (ties broken by event_id).
    let rows: Vec<Seed> = (0..3000i64)
        .map(|i| Seed::new("ws_w", "key.create", now - 60_000 - (i / 3) * 250))
        .collect();
    h.seed(&rows).await;
    let token = h.token("ws_w").await;
    for order in ["desc", "asc"] {
        let mut seen: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut page = 0;
        loop {
            let mut uri = format!("/v1/events?order={order}&limit=97");
            if let Some(c) = &cursor {
                uri.push_str(&format!("&cursor={c}"));
            }
            let (st, body) = h.json("GET", &uri, Some(&token), None).await;
            assert_eq!(st, StatusCode::OK, "{body}");
            seen.extend(body["data"].as_array().unwrap().iter().cloned());
            // New events keep arriving (newer than everything listed so far) between pages.
            page += 1;
            let fresh: Vec<Seed> = (0..5)
                .map(|j| Seed::new("ws_w", "key.create", now + page * 10 + j))
                .collect();
            h.seed(&fresh).await;
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let got = ids(&seen);
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "{order}: duplicates");
        let seeded: HashSet<String> = rows.iter().map(|s| s.event_id.to_string()).collect();
        let got_seeded: HashSet<String> = got
            .iter()
            .filter(|i| seeded.contains(*i))
            .cloned()
            .collect();
        assert_eq!(got_seeded, seeded, "{order}: gaps");
        let times: Vec<String> = seen
            .iter()
            .map(|e| e["time"].as_str().unwrap().to_owned())
            .collect();
        let mut sorted = times.clone();
        sorted.sort();
        if order == "desc" {
            sorted.reverse();
            // desc never sees the events inserted after it started.
            assert_eq!(got.len(), 3000);
        }
        assert_eq!(times, sorted, "{order}: order");
    }
}

#[tokio::test]
async fn duplicates_appear_once() {
    for dedup in [auditlog_query::Dedup::LimitBy, auditlog_query::Dedup::Final] {
        duplicates_appear_once_with(dedup).await;
    }
}

async fn duplicates_appear_once_with(dedup: auditlog_query::Dedup) {
    let cfg = auditlog_query::ApiConfig {
        dedup,
        ..Default::default()
    };
    let h = Harness::with_config("q_dup", cfg).await;
    let now = now_ms();
    let a = Seed::new("ws_d", "key.create", now - 1000);
    let b = Seed::new("ws_d", "key.delete", now - 2000);
    let c = Seed::new("ws_d", "key.update", now - 3000);
    // The same events written five times (separate inserts: separate parts, unmerged). With
    // pages of one, five copies use up the fast path's key budget (twice the page plus one)
    // in the middle of the walk, so the exact statement must take over there.
    for _ in 0..5 {
        h.seed(&[a.clone(), b.clone(), c.clone()]).await;
    }
    let token = h.token("ws_d").await;
    for limit in [1, 2, 50] {
        let got = h.walk(&token, &format!("/v1/events?limit={limit}")).await;
        assert_eq!(ids(&got), expected(&[&a, &b, &c]), "limit {limit}");
    }
    let (_, counted) = h.json("GET", "/v1/event-counts", Some(&token), None).await;
    assert_eq!(counts(&counted).values().sum::<u64>(), 3);
    let (_, _, body) = h
        .raw("GET", "/v1/export?format=ndjson", Some(&token), None)
        .await;
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), 3);
}

/// `max_execution_time` of this test's finished SELECTs whose text contains `marker`, from the
/// server's own `query_log`.
async fn execution_limits(h: &Harness, marker: &str) -> Vec<String> {
    let server = h.ch.server_client();
    server.query("SYSTEM FLUSH LOGS").execute().await.unwrap();
    server
        .query(
            "SELECT Settings['max_execution_time'] FROM system.query_log \
             WHERE type = 'QueryFinish' AND current_database = ? AND query_kind = 'Select' \
             AND position(query, ?) > 0",
        )
        .bind(&h.ch.database)
        .bind(marker)
        .fetch_all::<String>()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_export_is_not_cut_at_the_read_deadline() {
    // A list page runs under api.query_timeout on the ClickHouse side too; an export streams to
    // completion, so ClickHouse must not stop it after query_timeout seconds.
    let h = Harness::with_config(
        "q_exptime",
        ApiConfig {
            query_timeout: Duration::from_secs(7),
            ..ApiConfig::default()
        },
    )
    .await;
    h.seed(&[Seed::new("ws_x", "key.create", now_ms() - 1000)])
        .await;
    let token = h.token("ws_x").await;
    let (st, _) = h.json("GET", "/v1/events", Some(&token), None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, body) = h
        .raw("GET", "/v1/export?format=ndjson", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), 1);
    // A list page selects empty payload columns; the export selects the payloads.
    let list = execution_limits(&h, "'' AS request").await;
    let export = execution_limits(&h, "request, response").await;
    assert!(
        !list.is_empty() && list.iter().all(|s| s == "7"),
        "list reads run under the deadline: {list:?}"
    );
    // 0 (no limit) is ClickHouse's default, which query_log leaves out of `Settings`.
    assert!(
        export.len() == 1 && (export[0].is_empty() || export[0] == "0"),
        "the export's statement runs without a time limit: {export:?}"
    );
}

// ---- retention ------------------------------------------------------------------------------

#[tokio::test]
async fn retention_follows_the_current_plan() {
    let h = Harness::new("q_ret").await;
    let now = now_ms();
    let old_free = Seed::new("ws_free", "key.create", now - 8 * DAY_MS);
    let new_free = Seed::new("ws_free", "key.create", now - DAY_MS);
    let mut old_pro = Seed::new("ws_pro", "key.create", now - 8 * DAY_MS);
    old_pro.retention_days = 90;
    h.seed(&[old_free.clone(), new_free.clone(), old_pro.clone()])
        .await;
    let (st, _) = h
        .json(
            "PUT",
            "/v1/admin/workspaces/ws_pro/plan",
            Some(ADMIN),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let free = h.token("ws_free").await;
    let pro = h.token("ws_pro").await;

    let visible = |token: String, id: String| {
        let h = &h;
        async move {
            let list = ids(&h.walk(&token, "/v1/events?limit=1000").await).contains(&id);
            let (st, _) = h
                .json("GET", &format!("/v1/events/{id}"), Some(&token), None)
                .await;
            let (_, c) = h.json("GET", "/v1/event-counts", Some(&token), None).await;
            let (_, _, exp) = h
                .raw("GET", "/v1/export?format=csv", Some(&token), None)
                .await;
            let in_export = String::from_utf8(exp).unwrap().contains(&id);
            let counted = counts(&c).values().sum::<u64>();
            (list, st == StatusCode::OK, in_export, counted)
        }
    };
    // Free: 8 days old is gone from every read, 1 day old is there.
    assert_eq!(
        visible(free.clone(), old_free.event_id.to_string()).await,
        (false, false, false, 1)
    );
    assert!(visible(free.clone(), new_free.event_id.to_string()).await.0);
    let (_, ws) = h.json("GET", "/v1/workspace", Some(&free), None).await;
    assert_eq!(
        ws,
        json!({"workspace_id": "ws_free", "plan": "free", "retention_days": 7})
    );
    // Pro: kept.
    assert_eq!(
        visible(pro.clone(), old_pro.event_id.to_string()).await,
        (true, true, true, 1)
    );
    let (_, ws) = h.json("GET", "/v1/workspace", Some(&pro), None).await;
    assert_eq!(ws["retention_days"], 90);
    // Downgrade to Free: gone from reads at once (before any TTL merge).
    let (st, body) = h
        .json(
            "PUT",
            "/v1/admin/workspaces/ws_pro/plan",
            Some(ADMIN),
            Some(json!({"plan": "free"})),
        )
        .await;
    assert_eq!((st, body["plan"].clone()), (StatusCode::OK, json!("free")));
    assert_eq!(
        visible(pro.clone(), old_pro.event_id.to_string()).await,
        (false, false, false, 0)
    );
    // Enterprise unlimited: the plan reads back as unlimited. (The downgrade may already have
    // deleted the old row through TTL, so it is not expected back.)
    let (st, body) = h
        .json(
            "PUT",
            "/v1/admin/workspaces/ws_pro/plan",
            Some(ADMIN),
            Some(json!({"plan": "enterprise", "unlimited": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["retention_days"], Value::Null);
    let (_, ws) = h.json("GET", "/v1/workspace", Some(&pro), None).await;
    assert_eq!(
        ws,
        json!({"workspace_id": "ws_pro", "plan": "enterprise", "retention_days": null})
    );
    // Invalid plans are 422 / 400, naming the problem.
    let (st, body) = h
        .json(
            "PUT",
            "/v1/admin/workspaces/ws_pro/plan",
            Some(ADMIN),
            Some(json!({"plan": "gold"})),
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("unprocessable"))
    );
    let (st, body) = h
        .json(
            "PUT",
            "/v1/admin/workspaces/ws_pro/plan",
            Some(ADMIN),
            Some(json!({"plan": 5})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("body"));
}

// ---- isolation ------------------------------------------------------------------------------

#[tokio::test]
async fn every_endpoint_is_isolated_and_authenticated() {
    let h = Harness::new("q_iso").await;
    let now = now_ms();
    let a = Seed::new("ws_a", "key.create", now - 1000);
    let b = Seed::new("ws_b", "key.create", now - 1000);
    h.seed(&[a.clone(), b.clone()]).await;
    let ta = h.token("ws_a").await;
    let tb = h.token("ws_b").await;
    let a_id = a.event_id.to_string();
    let b_id = b.event_id.to_string();
    // B never sees A's event.
    assert_eq!(ids(&h.walk(&tb, "/v1/events").await), vec![b_id.clone()]);
    let (st_other, other) = h
        .json("GET", &format!("/v1/events/{a_id}"), Some(&tb), None)
        .await;
    let missing = uuid::Uuid::now_v7();
    let (st_none, none) = h
        .json("GET", &format!("/v1/events/{missing}"), Some(&tb), None)
        .await;
    assert_eq!(
        (st_other, st_none),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(other["error"]["code"], none["error"]["code"]);
    let (_, c) = h.json("GET", "/v1/event-counts", Some(&tb), None).await;
    assert_eq!(counts(&c).values().sum::<u64>(), 1);
    for f in ["csv", "ndjson"] {
        let (_, _, body) = h
            .raw("GET", &format!("/v1/export?format={f}"), Some(&tb), None)
            .await;
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(&b_id) && !text.contains(&a_id), "{text}");
    }
    let (_, ws) = h.json("GET", "/v1/workspace", Some(&tb), None).await;
    assert_eq!(ws["workspace_id"], "ws_b");
    // A sees its own.
    let (st, _) = h
        .json("GET", &format!("/v1/events/{a_id}"), Some(&ta), None)
        .await;
    assert_eq!(st, StatusCode::OK);

    // Without a token, with a wrong one, with a revoked one: 401 everywhere.
    let (_, list) = h
        .json(
            "GET",
            "/v1/admin/tokens?workspace_id=ws_b",
            Some(ADMIN),
            None,
        )
        .await;
    let b_token_id = list["tokens"][0]["token_id"].as_str().unwrap().to_owned();
    let (st, _) = h
        .json(
            "DELETE",
            &format!("/v1/admin/tokens/{b_token_id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, list) = h
        .json(
            "GET",
            "/v1/admin/tokens?workspace_id=ws_b",
            Some(ADMIN),
            None,
        )
        .await;
    assert!(list["tokens"][0]["revoked_at"].is_string());
    let workspace_routes = [
        "/v1/workspace".to_string(),
        "/v1/events".into(),
        format!("/v1/events/{b_id}"),
        "/v1/event-counts".into(),
        "/v1/export?format=csv".into(),
    ];
    let bogus = "alt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string();
    for uri in &workspace_routes {
        for token in [
            None,
            Some(bogus.as_str()),
            Some(tb.as_str()),
            Some(ADMIN),
            Some(""),
        ] {
            let (st, body) = h.json("GET", uri, token, None).await;
            assert_eq!(st, StatusCode::UNAUTHORIZED, "{uri} {token:?}: {body}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    // Admin endpoints refuse workspace tokens and no token.
    let admin_routes: [(&str, &str, Option<Value>); 5] = [
        ("GET", "/v1/admin/workspaces/ws_a/plan", None),
        (
            "PUT",
            "/v1/admin/workspaces/ws_a/plan",
            Some(json!({"plan": "pro"})),
        ),
        (
            "POST",
            "/v1/admin/tokens",
            Some(json!({"workspace_id": "ws_a"})),
        ),
        ("GET", "/v1/admin/tokens", None),
        ("DELETE", "/v1/admin/tokens/tok_x", None),
    ];
    for (m, uri, body) in &admin_routes {
        for token in [
            None,
            Some(ta.as_str()),
            Some("admin-token-for-tests-012345678"),
        ] {
            let (st, _) = h.json(m, uri, token, body.clone()).await;
            assert_eq!(st, StatusCode::UNAUTHORIZED, "{m} {uri} {token:?}");
        }
    }
    let (st, _) = h
        .json("DELETE", "/v1/admin/tokens/tok_nope", Some(ADMIN), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn revocation_applies_within_the_cache_time() {
    let h = Harness::with_config(
        "q_revoke",
        auditlog_query::ApiConfig {
            token_cache: std::time::Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    let t = h.token("ws_r").await;
    let (st, _) = h.json("GET", "/v1/workspace", Some(&t), None).await;
    assert_eq!(st, StatusCode::OK);
    // Revoke through the store directly (as another server or the CLI would).
    let tokens = auditlog_query::tokens::Tokens::new(h.client.clone(), Default::default());
    let id = tokens.list(Some("ws_r")).await.unwrap()[0].token_id.clone();
    tokens.revoke(&id).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let (st, _) = h.json("GET", "/v1/workspace", Some(&t), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

// ---- hostile input --------------------------------------------------------------------------

#[tokio::test]
async fn hostile_input_is_a_clear_4xx_and_inert() {
    let h = Harness::new("q_hostile").await;
    let now = now_ms();
    let evil = "x' OR 1=1 -- \\' \"; DROP TABLE events; {p0:String} ?";
    let mut marked = Seed::new("ws_h", "key.create", now - 1000);
    marked.actor_id = evil.into();
    marked.correlation_id = evil.into();
    marked.bucket = evil.into();
    marked.description = format!("desc {evil}");
    marked.set_targets(&[(evil, evil)]);
    let plain = Seed::new("ws_h", "key.delete", now - 2000);
    let other = Seed::new("ws_z", "key.create", now - 1000);
    h.seed(&[marked.clone(), plain.clone(), other]).await;
    let token = h.token("ws_h").await;
    let e = enc(evil);
    // The hostile value is data: it matches exactly the event that carries it.
    for p in [
        "actor_id",
        "correlation_id",
        "bucket",
        "target_type",
        "target_id",
        "q",
    ] {
        let got = h.walk(&token, &format!("/v1/events?{p}={e}")).await;
        assert_eq!(ids(&got), vec![marked.event_id.to_string()], "{p}");
    }
    // SQL fragments in plain filters match nothing and break nothing.
    for v in [
        "' OR ''='",
        "1) OR (1=1",
        "actor_1' --",
        "%",
        "_",
        "\u{0}x",
        "😀",
    ] {
        for p in [
            "actor_id",
            "target_id",
            "bucket",
            "correlation_id",
            "q",
            "target_type",
        ] {
            let (st, body) = h
                .json(
                    "GET",
                    &format!("/v1/events?{p}={}", enc(v)),
                    Some(&token),
                    None,
                )
                .await;
            assert!(
                st == StatusCode::OK || st == StatusCode::BAD_REQUEST,
                "{p}={v}: {st}"
            );
            if st == StatusCode::OK {
                assert!(
                    body["data"].as_array().unwrap().is_empty(),
                    "{p}={v}: {body}"
                );
            } else {
                assert!(body["error"]["message"].as_str().unwrap().starts_with(p));
            }
        }
    }
    // Malformed values: 400 naming the parameter.
    let huge = "a".repeat(5000);
    let bad: Vec<(String, &str)> = vec![
        ("event=key.create'%20OR%201=1".into(), "event"),
        ("event=".to_string() + &"a.b,".repeat(200), "event"),
        ("actor_type=root".into(), "actor_type"),
        ("outcome=1".into(), "outcome"),
        ("since=2026-13-45".into(), "since"),
        ("until=-99999999999999999".into(), "until"),
        ("since=1e9".into(), "since"),
        ("order=sideways".into(), "order"),
        ("limit=0".into(), "limit"),
        ("limit=-5".into(), "limit"),
        ("limit=1001".into(), "limit"),
        ("limit=99999999999999999999999".into(), "limit"),
        ("limit=ten".into(), "limit"),
        (format!("actor_id={huge}"), "actor_id"),
        (format!("q={huge}"), "q"),
        ("q=%FF%FE".into(), "q"),
        ("actor_id=%C3%28".into(), "actor_id"),
        ("limit=1&limit=2".into(), "limit"),
        ("colour=red".into(), "colour"),
        ("cursor=abc".into(), "cursor"),
        ("cursor=%27%3B%20DROP%20TABLE%20events".into(), "cursor"),
        (format!("cursor={huge}"), "cursor"),
    ];
    for (q, param) in &bad {
        let (st, body) = h
            .json("GET", &format!("/v1/events?{q}"), Some(&token), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(param), "{q}: {msg}");
    }
    // Counts and export parse the same way.
    for base in ["/v1/event-counts?", "/v1/export?format=csv&"] {
        for (q, param) in bad
            .iter()
            .filter(|(q, _)| !q.starts_with("limit") && !q.starts_with("cursor"))
        {
            let (st, body) = h
                .json("GET", &format!("{base}{q}"), Some(&token), None)
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{base}{q}");
            assert!(body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(param));
        }
    }
    for q in ["", "format=xml", "format=csv&limit=5"] {
        let (st, _) = h
            .json("GET", &format!("/v1/export?{q}"), Some(&token), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}");
    }
    // A tampered or foreign cursor is bad_cursor.
    let (_, page) = h
        .json("GET", "/v1/events?limit=1", Some(&token), None)
        .await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for c in [
        tampered.as_str(),
        &cursor[..cursor.len() - 3],
        &format!("{cursor}AA"),
    ] {
        let (st, body) = h
            .json(
                "GET",
                &format!("/v1/events?limit=1&cursor={c}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_cursor"))
        );
    }
    for other in [
        "/v1/events?limit=1&order=asc",
        "/v1/events?limit=1&event=key.create",
    ] {
        let (st, body) = h
            .json(
                "GET",
                &format!("{other}&cursor={cursor}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_cursor")),
            "{other}"
        );
    }
    // Paths: non-UUID ids, invalid UTF-8, SQL in ids.
    for id in ["not-a-uuid", "%FF%FE", "1%27%20OR%201=1", &"9".repeat(3000)] {
        let (st, body) = h
            .json("GET", &format!("/v1/events/{id}"), Some(&token), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{id}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("event_id"));
    }
    for uri in ["/v1/admin/workspaces/%FF/plan", "/v1/admin/tokens/%FF"] {
        let (st, _) = h
            .json(
                if uri.contains("plan") {
                    "GET"
                } else {
                    "DELETE"
                },
                uri,
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{uri}");
    }
    // Bodies: not JSON, wrong types, unknown fields, missing content type.
    for body in [
        &b"{"[..],
        b"[]",
        b"{\"plan\":[1]}",
        b"{\"plan\":\"pro\",\"x\":1}",
        b"\xff\xfe",
    ] {
        let (st, _, resp) = h
            .raw(
                "PUT",
                "/v1/admin/workspaces/ws_h/plan",
                Some(ADMIN),
                Some(body.to_vec()),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&resp)
        );
    }
    let (st, body) = h
        .json(
            "POST",
            "/v1/admin/tokens",
            Some(ADMIN),
            Some(json!({"workspace_id": ""})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    // Unknown routes and methods are JSON too.
    let (st, body) = h.json("GET", "/v1/nope", Some(&token), None).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (st, _) = h.json("POST", "/v1/events", Some(&token), None).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    // Nothing was dropped or changed: the workspace still has exactly its two events.
    let got = h.walk(&token, "/v1/events").await;
    assert_eq!(ids(&got), expected(&[&marked, &plain]));
}

// ---- export ---------------------------------------------------------------------------------

#[tokio::test]
async fn export_equals_all_list_pages() {
    let h = Harness::new("q_export").await;
    let now = now_ms();
    let rows: Vec<Seed> = (0..700i64)
        .map(|i| {
            let mut s = Seed::new(
                "ws_e",
                ["key.create", "api.delete", "role.update"][i as usize % 3],
                now - 5000 - i * 7_000,
            );
            s.description = format!("line {i}, with \"quotes\", commas\nand a newline");
            s.request = format!(r#"{{"n":{i},"s":"a,b"}}"#);
            s
        })
        .collect();
    h.seed(&rows).await;
    let token = h.token("ws_e").await;
    for (filters, order) in [
        ("", "desc"),
        ("event=key.*,role.update", "asc"),
        ("q=LINE%201", "desc"),
    ] {
        let pages = h
            .walk(
                &token,
                &format!("/v1/events?limit=64&order={order}&{filters}"),
            )
            .await;
        let (st, headers, body) = h
            .raw(
                "GET",
                &format!("/v1/export?format=ndjson&order={order}&{filters}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            headers["content-disposition"],
            "attachment; filename=\"audit-log-ws_e.ndjson\""
        );
        let lines: Vec<Value> = String::from_utf8(body)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let stripped: Vec<Value> = lines
            .iter()
            .map(|l| {
                let mut l = l.clone();
                let m = l.as_object_mut().unwrap();
                assert!(m.contains_key("request"));
                m.remove("request");
                m.remove("response");
                l
            })
            .collect();
        assert_eq!(stripped, pages, "ndjson {filters}");
        let (st, headers, body) = h
            .raw(
                "GET",
                &format!("/v1/export?format=csv&order={order}&{filters}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let mut rdr = csv::Reader::from_reader(body.as_slice());
        assert_eq!(
            rdr.headers().unwrap().iter().collect::<Vec<_>>(),
            auditlog_store::events::CSV_COLUMNS.to_vec()
        );
        let recs: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
        assert_eq!(
            recs.iter().map(|r| r[0].to_owned()).collect::<Vec<_>>(),
            ids(&pages),
            "csv {filters}"
        );
        for (r, p) in recs.iter().zip(&pages) {
            assert_eq!(&r[1], p["time"].as_str().unwrap());
            assert_eq!(&r[9], p["description"].as_str().unwrap());
            let n: Value = serde_json::from_str(&r[15]).unwrap();
            assert!(n["n"].is_number());
        }
    }
}

// ---- contract: OpenAPI, health, metrics, unavailable ----------------------------------------

#[tokio::test]
async fn openapi_health_metrics() {
    let h = Harness::new("q_contract").await;
    let (st, doc) = h.json("GET", "/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(|m| (m.clone(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut routed: Vec<(String, String)> = auditlog_query::api::routes()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    // Every documented route answers (not the router's 404/405).
    for (m, p) in &documented {
        let uri = p
            .replace("{event_id}", &uuid::Uuid::nil().to_string())
            .replace("{workspace_id}", "ws")
            .replace("{token_id}", "tok_x");
        let (st, _, _) = h.raw(&m.to_uppercase(), &uri, None, None).await;
        assert!(
            st != StatusCode::NOT_FOUND || uri.contains("tokens/"),
            "{m} {uri}: {st}"
        );
        assert_ne!(st, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}");
    }
    let (st, body) = h.json("GET", "/health", None, None).await;
    assert_eq!(
        (st, &body["status"], &body["clickhouse"]),
        (StatusCode::OK, &json!("ok"), &json!("ok")),
        "{body}"
    );
    assert!(body["clickhouse_ms"].is_u64(), "{body}");
    let (st, body) = h.json("GET", "/health/ready", None, None).await;
    assert_eq!(
        (st, body),
        (
            StatusCode::OK,
            json!({"status": "ok", "checks": {"clickhouse": "ok"}})
        )
    );
    let (st, body) = h.json("GET", "/health/live", None, None).await;
    assert_eq!((st, body), (StatusCode::OK, json!({"status": "ok"})));
    let (st, _, text) = h.raw("GET", "/metrics", None, None).await;
    assert_eq!(st, StatusCode::OK);
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(
            "auditlog_api_requests_total{route=\"/health\",method=\"GET\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("auditlog_api_request_duration_seconds_bucket"),
        "{text}"
    );
    // The dashboard is merged at /.
    let (st, _, _) = h.raw("GET", "/", None, None).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn clickhouse_down_is_503_with_retry_after() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ch = auditlog_store::ClickHouseConfig {
        url: format!("http://127.0.0.1:{port}"),
        ..Default::default()
    };
    let cfg = auditlog_query::ApiConfig {
        admin_token: ADMIN.into(),
        ..Default::default()
    };
    let app = auditlog_query::api::app(auditlog_query::api::AppState::new(
        &cfg,
        ch.client(),
        auditlog_testkit::prometheus(auditlog_query::api::metrics::HISTOGRAM_BUCKETS),
    ));
    let h = Harness {
        ch: ch.clone(),
        client: ch.client(),
        app,
    };
    for (m, uri, token) in [
        ("GET", "/health", None),
        ("GET", "/health/ready", None),
        (
            "GET",
            "/v1/events",
            Some("alt_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        ),
        ("GET", "/v1/admin/tokens", Some(ADMIN)),
        ("GET", "/v1/admin/workspaces/ws/plan", Some(ADMIN)),
    ] {
        let (st, headers, _) = h.raw(m, uri, token, None).await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(headers["retry-after"], "5", "{uri}");
    }
}
