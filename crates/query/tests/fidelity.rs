//! An audit entry is evidence: the API returns every stored payload byte for byte (detail,
//! list, NDJSON and CSV export), CSV cells a spreadsheet would run are neutralized unless
//! `csv_raw=true`, `GET /v1/workspace` rejects unknown parameters, and a row past its retention
//! is hidden from the API and from the `events_retained` view while it waits for TTL.

mod common;

use axum::http::StatusCode;
use common::*;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// Payloads whose exact text a JSON round trip through numbers or maps would change (one per
/// line of the shared fixture `crates/event/tests/exact-payloads.txt`).
static PAYLOADS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    include_str!("../../event/tests/exact-payloads.txt")
        .lines()
        .collect()
});

/// The payloads of a detail or NDJSON body, as the text received.
#[derive(Deserialize)]
struct Payloads<'a> {
    #[serde(borrow)]
    event_id: &'a str,
    #[serde(borrow)]
    request: &'a RawValue,
    #[serde(borrow)]
    response: &'a RawValue,
}

/// One seeded row per payload (request = payload, response = the next one).
fn payload_rows(ws: &str) -> Vec<Seed> {
    let now = now_ms();
    PAYLOADS
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut s = Seed::new(ws, "key.create", now - 1000 * i as i64);
            s.request = (*p).to_owned();
            s.response = PAYLOADS[(i + 1) % PAYLOADS.len()].to_owned();
            s
        })
        .collect()
}

#[tokio::test]
async fn detail_list_and_export_keep_payload_bytes() {
    let h = Harness::new("q_fidelity").await;
    let rows = payload_rows("ws_fid");
    h.seed(&rows).await;
    let token = h.token("ws_fid").await;

    for row in &rows {
        let id = row.event_id.to_string();
        let (st, headers, body) = h
            .raw("GET", &format!("/v1/events/{id}"), Some(&token), None)
            .await;
        let text = String::from_utf8(body).unwrap();
        assert_eq!(st, StatusCode::OK, "{text}");
        assert_eq!(headers["content-type"], "application/json");
        let got: Payloads = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(got.event_id, id);
        assert_eq!(got.request.get(), row.request, "{text}");
        assert_eq!(got.response.get(), row.response, "{text}");
        // The rest of the detail is the wire format plus `inserted_at`.
        let v: Value = serde_json::from_str(
            &text
                .replace(got.request.get(), "null")
                .replace(got.response.get(), "null"),
        )
        .unwrap();
        assert_eq!(v["actor"]["name"], "Ada");
        assert!(v["inserted_at"].as_str().unwrap().ends_with('Z'), "{v}");
    }

    // The list shows every row (none hidden, none `null`), without payloads.
    let listed = h.walk(&token, "/v1/events?limit=3").await;
    assert_eq!(ids(&listed), expected(&rows.iter().collect::<Vec<_>>()));
    for e in &listed {
        let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "actor",
                "bucket",
                "context",
                "description",
                "event",
                "event_id",
                "outcome",
                "targets",
                "time",
                "version",
                "workspace_id"
            ],
            "{e}"
        );
    }

    // NDJSON: one line per event, payloads as stored.
    let (st, _, body) = h
        .raw("GET", "/v1/export?format=ndjson", Some(&token), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(text.lines().count(), rows.len(), "{text}");
    for line in text.lines() {
        let got: Payloads = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let row = rows.iter().find(|r| r.event_id.to_string() == got.event_id);
        let row = row.expect("an exported id was seeded");
        assert_eq!(got.request.get(), row.request, "{line}");
        assert_eq!(got.response.get(), row.response, "{line}");
    }

    // CSV, raw: every cell as stored.
    let (st, _, body) = h
        .raw(
            "GET",
            "/v1/export?format=csv&csv_raw=true",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let mut csv = csv::Reader::from_reader(body.as_slice());
    let mut n = 0;
    for rec in csv.records() {
        let rec = rec.unwrap();
        let row = rows
            .iter()
            .find(|r| r.event_id.to_string() == rec[0])
            .unwrap();
        assert_eq!((&rec[15], &rec[16]), (&*row.request, &*row.response));
        n += 1;
    }
    assert_eq!(n, rows.len());
}

#[tokio::test]
async fn a_payload_with_line_breaks_stays_one_ndjson_line() {
    let h = Harness::new("q_fid_lines").await;
    let mut row = Seed::new("ws_nl", "key.create", now_ms());
    row.request = "{\n  \"a\": [1,\r\n 2]\n}".into();
    h.seed(std::slice::from_ref(&row)).await;
    let token = h.token("ws_nl").await;
    let (_, _, body) = h
        .raw("GET", "/v1/export?format=ndjson", Some(&token), None)
        .await;
    let text = String::from_utf8(body).unwrap();
    assert_eq!(text.lines().count(), 1, "{text:?}");
    let got: Payloads = serde_json::from_str(text.trim_end()).unwrap();
    // Each CR and LF is a space, every other byte as stored.
    assert_eq!(got.request.get(), "{   \"a\": [1,   2] }");
    assert_eq!(got.request.get().len(), row.request.len());
    // The detail has the exact text.
    let (_, _, body) = h
        .raw(
            "GET",
            &format!("/v1/events/{}", row.event_id),
            Some(&token),
            None,
        )
        .await;
    let body = String::from_utf8(body).unwrap();
    let got: Payloads = serde_json::from_str(&body).unwrap();
    assert_eq!(got.request.get(), row.request);
}

#[tokio::test]
async fn csv_export_neutralizes_formulas_unless_raw() {
    let h = Harness::new("q_csv_inj").await;
    let mut row = Seed::new("ws_csv", "key.create", now_ms());
    row.actor_name = "=HYPERLINK(\"http://evil.example\",\"click\")".into();
    row.actor_id = "+1-555".into();
    row.description = "-2+3".into();
    row.user_agent = "@SUM(A1:A9)".into();
    row.failure_reason = "\tcmd".into();
    row.correlation_id = "\r=1".into();
    row.request = "-1".into();
    row.remote_ip = "10.0.0.1".into();
    h.seed(std::slice::from_ref(&row)).await;
    let token = h.token("ws_csv").await;

    let get = |q: &'static str| {
        let (h, token) = (&h, &token);
        async move {
            let (st, _, body) = h
                .raw("GET", &format!("/v1/export?{q}"), Some(token), None)
                .await;
            assert_eq!(
                st,
                StatusCode::OK,
                "{q}: {}",
                String::from_utf8_lossy(&body)
            );
            let mut r = csv::Reader::from_reader(body.as_slice());
            let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
            let rec = r.records().next().unwrap().unwrap();
            header
                .into_iter()
                .zip(rec.iter().map(str::to_owned))
                .collect::<std::collections::HashMap<_, _>>()
        }
    };
    let hostile = [
        ("actor_name", row.actor_name.clone()),
        ("actor_id", row.actor_id.clone()),
        ("description", row.description.clone()),
        ("user_agent", row.user_agent.clone()),
        ("failure_reason", row.failure_reason.clone()),
        ("correlation_id", row.correlation_id.clone()),
        ("request", row.request.clone()),
    ];
    for q in [
        "format=csv",
        "format=csv&csv_raw=false",
        "format=csv&csv_raw=",
    ] {
        let cells = get(q).await;
        for (col, stored) in &hostile {
            assert_eq!(cells[*col], format!("'{stored}"), "{q} {col}");
        }
        assert_eq!(cells["remote_ip"], "10.0.0.1");
        assert_eq!(cells["response"], row.response);
        assert_eq!(cells["event_id"], row.event_id.to_string());
    }
    let cells = get("format=csv&csv_raw=true").await;
    for (col, stored) in &hostile {
        assert_eq!(&cells[*col], stored, "raw {col}");
    }
    // NDJSON stays exact.
    let (_, _, body) = h
        .raw("GET", "/v1/export?format=ndjson", Some(&token), None)
        .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["actor"]["name"], json!(row.actor_name));
    assert_eq!(v["description"], json!(row.description));
    assert_eq!(v["request"], json!(-1));

    for q in [
        "format=csv&csv_raw=yes",
        "format=csv&csv_raw=1",
        "format=ndjson&csv_raw=true",
    ] {
        let (st, body) = h
            .json("GET", &format!("/v1/export?{q}"), Some(&token), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(body["error"]["code"], "bad_parameter", "{q}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("csv_raw:"),
            "{q}: {body}"
        );
    }
}

#[tokio::test]
async fn workspace_rejects_unknown_parameters() {
    let h = Harness::new("q_ws_params").await;
    let token = h.token("ws_p").await;
    let (st, body) = h.json("GET", "/v1/workspace", Some(&token), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    for q in ["workspace_id=other", "limit=5", "x", "plan=pro&plan=free"] {
        let (st, body) = h
            .json("GET", &format!("/v1/workspace?{q}"), Some(&token), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body["error"]["code"], "bad_parameter");
        let name = q.split(['=', '&']).next().unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{name}:")),
            "{q}: {body}"
        );
    }
    // Unauthenticated is still a 401 first.
    let (st, _) = h.json("GET", "/v1/workspace?x=1", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_backfilled_event_past_its_retention_is_hidden_until_ttl_deletes_it() {
    let h = Harness::new("q_backfill").await;
    // Migrations are idempotent and include the view.
    assert_eq!(
        auditlog_store::migrate(&h.ch).await.unwrap(),
        Vec::<u32>::new()
    );
    // Hold TTL merges on this test's table, so the row stays as ClickHouse wrote it (without
    // this, a TTL merge may run within seconds or up to `merge_with_ttl_timeout` later).
    // The table holding the rows: `events`, or `events_local` on every server of a cluster.
    let layout = auditlog_store::Layout::detect(&h.client)
        .await
        .unwrap()
        .unwrap();
    h.client
        .query(&layout.system_on_events("STOP TTL MERGES", &h.ch.database))
        .execute()
        .await
        .unwrap();
    let now = now_ms();
    let old = Seed::new("ws_bf", "key.create", now - 10 * DAY_MS); // Free: 7 days
    let fresh = Seed::new("ws_bf", "key.create", now - DAY_MS);
    let mut forever = Seed::new("ws_ent", "key.create", now - 400 * DAY_MS);
    forever.retention_days = 0;
    h.seed(&[old.clone(), fresh.clone(), forever.clone()]).await;

    let ids_in = |table: &'static str| {
        let client = h.client.clone();
        async move {
            let mut v: Vec<String> = client
                .query(&format!(
                    "SELECT toString(event_id) FROM {table} ORDER BY event_id"
                ))
                .fetch_all()
                .await
                .unwrap();
            v.sort();
            v
        }
    };
    let mut all = vec![
        old.event_id.to_string(),
        fresh.event_id.to_string(),
        forever.event_id.to_string(),
    ];
    all.sort();
    let mut retained = vec![fresh.event_id.to_string(), forever.event_id.to_string()];
    retained.sort();
    // Written, and visible in the raw table; not in the view.
    assert_eq!(ids_in("events").await, all);
    assert_eq!(ids_in("events_retained").await, retained);
    // The view keeps every column of `events`.
    let cols = |table: &'static str| {
        let client = h.client.clone();
        async move {
            client
                .query("SELECT groupArray(name) FROM (SELECT name FROM system.columns WHERE database = currentDatabase() AND table = ? ORDER BY position)")
                .bind(table)
                .fetch_one::<Vec<String>>()
                .await
                .unwrap()
        }
    };
    assert_eq!(cols("events").await, cols("events_retained").await);

    // The API never shows it.
    let token = h.token("ws_bf").await;
    assert_eq!(
        ids(&h.walk(&token, "/v1/events").await),
        vec![fresh.event_id.to_string()]
    );
    let (st, _) = h
        .json(
            "GET",
            &format!("/v1/events/{}", old.event_id),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, c) = h.json("GET", "/v1/event-counts", Some(&token), None).await;
    assert_eq!(counts(&c)["key.create"], 1);
    for format in ["csv", "ndjson"] {
        let (_, _, body) = h
            .raw(
                "GET",
                &format!("/v1/export?format={format}"),
                Some(&token),
                None,
            )
            .await;
        let text = String::from_utf8(body).unwrap();
        assert!(!text.contains(&old.event_id.to_string()), "{format}");
        assert!(text.contains(&fresh.event_id.to_string()), "{format}");
    }

    // A TTL merge deletes it from the table itself.
    h.client
        .query(&layout.system_on_events("START TTL MERGES", &h.ch.database))
        .execute()
        .await
        .unwrap();
    h.client
        .query(&layout.optimize_events())
        .execute()
        .await
        .unwrap();
    assert_eq!(ids_in("events").await, retained);
}
