//! The stream destinations other than the webhook, each against a real server of its
//! protocol: Splunk HEC and Datadog logs against the kit's recording HTTP receiver (the exact
//! request: path, credentials, body shape, every event with its `event_id`, payloads byte for
//! byte; busy and rate-limited answers become failures carrying `Retry-After`), and S3 against
//! a real S3-compatible server (moto, `auditlog_testkit::S3Server`): gzipped NDJSON objects
//! listed and read back, one per batch, a retried batch overwriting its object.
//! Each test takes a few seconds (S3: moto starts in about 2 s; installed once per machine).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use auditlog_deliver::destination::{datadog::Datadog, s3, s3::S3, splunk::SplunkHec};
use auditlog_deliver::{http, Batch, Destination, Failure, Rendered};
use auditlog_event::{Actor, AuditEvent, Payload, Target};
use auditlog_formats::{render, Format};
use auditlog_streams::model::{Desired, Destination as Spec, Stream, StreamSpec};
use auditlog_testkit::{unique_name, Received, Receiver, ReceiverMode, S3Server};
use chrono::{TimeZone as _, Utc};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Streams and batches
// ---------------------------------------------------------------------------------------------

fn stream(workspace_id: &str, destination: Spec) -> Stream {
    Stream {
        stream_id: format!("str_{}", Uuid::new_v4().simple()),
        spec: StreamSpec {
            workspace_id: workspace_id.into(),
            name: "test".into(),
            destination,
            format: Format::Json,
            filter: BTreeMap::new(),
        },
        desired: Desired::Active,
        paused_reason: String::new(),
        secrets: vec![],
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

/// `n` events rendered as the worker renders them, with payloads whose spacing a
/// re-serialization would lose, stored at `inserted_ms`.
fn batch(stream: &Stream, first_offset: i64, n: usize, inserted_ms: i64) -> Result<Batch> {
    let ws = &stream.spec.workspace_id;
    let mut events = Vec::new();
    for i in 0..n {
        let offset = first_offset + i as i64;
        let time = Utc
            .timestamp_millis_opt(1_764_000_000_123 + offset * 1000)
            .unwrap();
        let event = AuditEvent::builder(ws.as_str(), "api_key.created")
            .time(time)
            .actor(Actor::user("user_1", "Ada"))
            .target(Target::new("key", format!("key_{offset}"), "prod"))
            .description(format!("Ada created key {offset}"))
            .request(Payload::from_json(format!(
                r#"{{"n": {offset},  "x":[1, 2.50]}}"#
            ))?)
            .build()?;
        events.push(Rendered {
            event_id: event.event_id,
            time_ms: time.timestamp_millis(),
            inserted_ms: inserted_ms + i as i64,
            partition: 0,
            offset,
            json: render(Format::Json, &event, inserted_ms + i as i64)?,
        });
    }
    Ok(Batch {
        stream_id: stream.stream_id.clone(),
        workspace_id: ws.clone(),
        batch_id: Batch::id(&stream.stream_id, 0, 0, first_offset),
        events,
    })
}

/// The rendered text of every event of `batch` appears in `body` exactly as rendered.
fn assert_bytes_preserved(batch: &Batch, body: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(body)?;
    for e in &batch.events {
        let json = std::str::from_utf8(&e.json)?;
        ensure!(
            json.contains(r#""n": "#) && text.contains(json),
            "event {} not byte for byte in the body",
            e.event_id
        );
    }
    Ok(())
}

/// A gzipped request body (`Content-Encoding: gzip`), decompressed.
fn gunzipped(r: &Received) -> Result<Vec<u8>> {
    ensure!(
        r.header("content-encoding") == Some("gzip"),
        "{:?}",
        r.headers
    );
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut out)?;
    Ok(out)
}

/// Delivers `b` to `dest` and returns the one request it made, a `POST` to `path`.
async fn the_one_post(
    dest: &dyn Destination,
    b: &Batch,
    rx: &Receiver,
    path: &str,
) -> Result<Received> {
    dest.deliver(b).await?;
    let seen = rx.received();
    ensure!(seen.len() == 1, "{} requests", seen.len());
    ensure!(
        (seen[0].method.as_str(), seen[0].path.as_str()) == ("POST", path),
        "{} {}",
        seen[0].method,
        seen[0].path
    );
    Ok(seen[0].clone())
}

fn client() -> reqwest::Client {
    http::client(Duration::from_secs(10))
}

// ---------------------------------------------------------------------------------------------
// Splunk HEC
// ---------------------------------------------------------------------------------------------

const HEC_OK: &str = r#"{"text":"Success","code":0}"#;

#[tokio::test]
async fn splunk_hec_gets_one_envelope_per_event_with_the_token() -> Result<()> {
    let rx = Receiver::start().await?;
    rx.set_ok_status(200, HEC_OK);
    let s = stream(
        "ws_splunk",
        Spec::SplunkHec {
            url: format!("{}/", rx.url()),
            token: "hec-token-1".into(),
            index: Some("audit".into()),
            sourcetype: None,
        },
    );
    let dest = SplunkHec::new(&s, client());
    let b = batch(&s, 10, 3, 1_764_000_100_000)?;
    let r = &the_one_post(&dest, &b, &rx, "/services/collector/event").await?;
    assert_eq!(r.header("authorization"), Some("Splunk hec-token-1"));
    Uuid::parse_str(r.header("x-splunk-request-channel").context("channel")?)?;
    let envelopes: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&r.body)
        .into_iter()
        .collect::<Result<_, _>>()?;
    assert_eq!(envelopes.len(), 3);
    for (env, e) in envelopes.iter().zip(&b.events) {
        assert_eq!(env["host"], "auditlog");
        assert_eq!(env["source"], "auditlog:ws_splunk");
        assert_eq!(env["sourcetype"], "auditlog");
        assert_eq!(env["index"], "audit");
        let time = env["time"].as_f64().context("time")?;
        assert!((time - e.time_ms as f64 / 1000.0).abs() < 0.0005, "{time}");
        assert_eq!(env["event"]["event_id"], e.event_id.to_string());
    }
    assert_bytes_preserved(&b, &r.body)?;
    assert!(dest.limits().max_events >= 100 && dest.limits().max_wait.is_zero());
    Ok(())
}

#[tokio::test]
async fn splunk_hec_busy_bad_token_and_error_codes_are_failures() -> Result<()> {
    let rx = Receiver::start().await?;
    let s = stream(
        "ws_splunk",
        Spec::SplunkHec {
            url: rx.url(),
            token: "t".into(),
            index: None,
            sourcetype: Some("audit:json".into()),
        },
    );
    let dest = SplunkHec::new(&s, client());
    let b = batch(&s, 0, 2, 1_764_000_100_000)?;

    rx.set_mode(ReceiverMode::TooMany {
        retry_after_s: 7,
        times: 1,
    });
    let f: Failure = dest.deliver(&b).await.unwrap_err();
    assert_eq!(f.retry_after, Some(Duration::from_secs(7)), "{f:?}");
    assert!(f.reason.contains("429"), "{f}");

    rx.set_ok_status(503, r#"{"text":"Server is busy","code":9}"#);
    let f = dest.deliver(&b).await.unwrap_err();
    assert!(
        f.reason.contains("503") && f.reason.contains("Server is busy"),
        "{f}"
    );

    rx.set_ok_status(403, r#"{"text":"Invalid token","code":4}"#);
    let f = dest.deliver(&b).await.unwrap_err();
    assert!(
        f.reason.contains("403") && f.reason.contains("Invalid token"),
        "{f}"
    );
    assert_eq!(f.retry_after, None);

    // A 200 that is not HEC's success is not an acknowledgement either.
    rx.set_ok_status(200, r#"{"text":"Incorrect index","code":7}"#);
    let f = dest.deliver(&b).await.unwrap_err();
    assert!(f.reason.contains("code 7"), "{f}");

    // The retry of the same batch goes through, identical.
    rx.set_ok_status(200, HEC_OK);
    dest.deliver(&b).await?;
    let seen = rx.received();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0].body, seen[4].body);
    let first: serde_json::Value = serde_json::Deserializer::from_slice(&seen[4].body)
        .into_iter()
        .next()
        .context("an envelope")??;
    assert_eq!(first["sourcetype"], "audit:json");
    assert!(first.get("index").is_none());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Datadog
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn datadog_gets_a_json_array_of_logs_with_the_api_key() -> Result<()> {
    let rx = Receiver::start().await?;
    rx.set_ok_status(202, "{}");
    let s = stream(
        "ws_dd",
        Spec::Datadog {
            url: rx.url(),
            api_key: "dd-key-1".into(),
            service: Some("billing".into()),
            tags: Some("env:test,team:audit".into()),
        },
    );
    let dest = Datadog::new(&s, client());
    let b = batch(&s, 5, 4, 1_764_000_100_000)?;
    let r = &the_one_post(&dest, &b, &rx, "/api/v2/logs").await?;
    assert_eq!(r.header("dd-api-key"), Some("dd-key-1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = gunzipped(r)?;
    let logs: Vec<serde_json::Value> = serde_json::from_slice(&body)?;
    assert_eq!(logs.len(), 4);
    for (log, e) in logs.iter().zip(&b.events) {
        assert_eq!(log["ddsource"], "auditlog");
        assert_eq!(log["service"], "billing");
        assert_eq!(log["hostname"], "auditlog");
        assert_eq!(log["ddtags"], "env:test,team:audit");
        assert!(
            log.get("timestamp").is_none(),
            "Datadog stamps logs on arrival"
        );
        assert_eq!(log["auditlog"]["event_id"], e.event_id.to_string());
        assert_eq!(
            log["message"],
            format!("Ada created key {}", e.offset).as_str()
        );
    }
    assert_bytes_preserved(&b, &body)?;
    Ok(())
}

#[tokio::test]
async fn datadog_rate_limits_and_refusals_are_failures() -> Result<()> {
    let rx = Receiver::start().await?;
    let s = stream(
        "ws_dd",
        Spec::Datadog {
            url: rx.url(),
            api_key: "k".into(),
            service: None,
            tags: None,
        },
    );
    let dest = Datadog::new(&s, client());
    let b = batch(&s, 0, 2, 1_764_000_100_000)?;

    rx.set_mode(ReceiverMode::TooMany {
        retry_after_s: 3,
        times: 1,
    });
    let f = dest.deliver(&b).await.unwrap_err();
    assert_eq!(f.retry_after, Some(Duration::from_secs(3)), "{f:?}");
    assert!(f.reason.contains("429"), "{f}");

    rx.set_ok_status(403, r#"{"errors":["Forbidden"]}"#);
    let f = dest.deliver(&b).await.unwrap_err();
    assert!(
        f.reason.contains("403") && f.reason.contains("Forbidden"),
        "{f}"
    );

    rx.set_ok_status(202, "{}");
    dest.deliver(&b).await?;
    let seen = rx.received();
    assert_eq!(seen.len(), 3);
    assert_eq!(gunzipped(&seen[0])?, gunzipped(&seen[2])?);
    let logs: Vec<serde_json::Value> = serde_json::from_slice(&gunzipped(&seen[2])?)?;
    assert_eq!(logs[0]["service"], "auditlog");
    assert!(logs[0].get("ddtags").is_none());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// S3 against a real S3-compatible server
// ---------------------------------------------------------------------------------------------

fn s3_stream(server: &S3Server, bucket: &str, ws: &str) -> Stream {
    let creds = server.credentials();
    stream(
        ws,
        Spec::S3 {
            endpoint: server.endpoint(),
            bucket: bucket.into(),
            region: server.region().into(),
            prefix: "audit/".into(),
            access_key_id: creds.key().into(),
            secret_access_key: creds.secret().into(),
            window_seconds: 30,
            path_style: true,
        },
    )
}

/// The lines of a gzipped NDJSON object.
fn gunzip_lines(body: &[u8]) -> Result<Vec<serde_json::Value>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(body).read_to_string(&mut text)?;
    ensure!(text.ends_with('\n'), "the last line ends with a newline");
    text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_objects_are_gzipped_ndjson_one_per_batch_and_a_retry_overwrites() -> Result<()> {
    let server = tokio::task::spawn_blocking(S3Server::start).await??;
    let bucket = unique_name("audit").replace('_', "-");
    server.create_bucket(&bucket).await?;
    let ws = unique_name("ws");
    let s = s3_stream(&server, &bucket, &ws);
    let dest = S3::new(&s, client());
    assert_eq!(dest.limits().max_wait, Duration::from_secs(30));

    // 2025-11-24T16:xx UTC and the next hour.
    let b1 = batch(&s, 0, 3, 1_764_000_000_000)?;
    let b2 = batch(&s, 3, 5, 1_764_000_000_000 + 3_600_000)?;
    dest.deliver(&b1).await?;
    dest.deliver(&b2).await?;

    let mut keys: Vec<String> = server
        .list(&bucket, "audit/")
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    let k1 = format!("audit/{ws}/2025/11/24/16/{}.ndjson.gz", b1.batch_id);
    let k2 = format!("audit/{ws}/2025/11/24/17/{}.ndjson.gz", b2.batch_id);
    assert_eq!(keys, vec![k1.clone(), k2.clone()]);
    assert_eq!(s3::object_key("audit/", &b1), k1);

    let mut ids = Vec::new();
    for (key, b) in [(&k1, &b1), (&k2, &b2)] {
        let (body, content_type) = server.get(&bucket, key).await?;
        assert_eq!(content_type, s3::CONTENT_TYPE);
        let lines = gunzip_lines(&body)?;
        assert_eq!(lines.len(), b.events.len());
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text)?;
        assert_bytes_preserved(b, text.as_bytes())?;
        ids.extend(
            lines
                .iter()
                .map(|l| l["event_id"].as_str().unwrap().to_owned()),
        );
    }
    let mut want: Vec<String> = b1
        .events
        .iter()
        .chain(&b2.events)
        .map(|e| e.event_id.to_string())
        .collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want, "every event once");

    // The same batch again (re-formed after an unacknowledged attempt, one event longer):
    // the same key, overwritten; still two objects.
    let mut again = batch(&s, 0, 4, 1_764_000_000_000)?;
    again.events[..3].clone_from_slice(&b1.events);
    dest.deliver(&again).await?;
    let listed = server.list(&bucket, "audit/").await?;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let (body, _) = server.get(&bucket, &k1).await?;
    let lines = gunzip_lines(&body)?;
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["event_id"], again.events[3].event_id.to_string());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_missing_bucket_and_unreachable_endpoint_are_failures() -> Result<()> {
    let server = tokio::task::spawn_blocking(S3Server::start).await??;
    let s = s3_stream(&server, "no-such-bucket-here", "ws_s3");
    let b = batch(&s, 0, 1, 1_764_000_000_000)?;
    let f = S3::new(&s, client()).deliver(&b).await.unwrap_err();
    assert!(
        f.reason.contains("404") && f.reason.contains("NoSuchBucket"),
        "{f}"
    );

    let mut bad = s.clone();
    if let Spec::S3 { endpoint, .. } = &mut bad.spec.destination {
        *endpoint = "not a url".into();
    }
    let f = S3::new(&bad, client()).deliver(&b).await.unwrap_err();
    assert!(f.reason.contains("S3 endpoint"), "{f}");
    drop(server);
    let f = S3::new(&s, client()).deliver(&b).await.unwrap_err();
    assert!(f.reason.contains("connection failed"), "{f}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// S3 end to end: events stored in ClickHouse, a stream created with the StreamStore, the real
// `auditlog stream-worker` delivering them to moto
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_worker_writes_a_workspaces_events_to_s3() -> Result<()> {
    use auditlog_store::events::{insert, EventRow, RowContext};
    use auditlog_store::FeedStart;
    use auditlog_streams::StreamStore;

    const N: i64 = 60;
    let server = tokio::task::spawn_blocking(S3Server::start).await??;
    let bucket = unique_name("e2e").replace('_', "-");
    server.create_bucket(&bucket).await?;
    let ch = auditlog_testkit::fresh_database("streams3").await?;
    let client = ch.client();
    let ws = unique_name("ws");

    // Events of the workspace (and of another one, which must not be delivered), stored as
    // the consumer stores them: two partitions, offsets in order.
    let mut rows = Vec::new();
    let mut want = Vec::new();
    // Event times in the last minutes: inside the free plan's retention.
    let base_ms = Utc::now().timestamp_millis() - 600_000;
    for i in 0..N {
        let time = Utc.timestamp_millis_opt(base_ms + i * 1000).unwrap();
        let owner = if i % 10 == 9 { "ws_other" } else { ws.as_str() };
        let event = AuditEvent::builder(owner, "api_key.created")
            .time(time)
            .actor(Actor::user("user_1", "Ada"))
            .target(Target::new("key", format!("key_{i}"), "prod"))
            .description(format!("Ada created key {i}"))
            .request(Payload::from_json(format!(r#"{{"i": {i}}}"#))?)
            .build()?;
        if owner == ws {
            want.push(event.event_id.to_string());
        }
        let ctx = RowContext {
            partition: (i % 2) as i32,
            offset: i / 2,
            retention_days: 0,
        };
        rows.push(EventRow::from_event(event, ctx));
    }
    insert(&client, &rows, &unique_name("seed")).await?;

    let store = StreamStore::new(client.clone());
    let creds = server.credentials();
    let spec = StreamSpec {
        workspace_id: ws.clone(),
        name: "to s3".into(),
        destination: Spec::S3 {
            endpoint: server.endpoint(),
            bucket: bucket.clone(),
            region: server.region().into(),
            prefix: "e2e/".into(),
            access_key_id: creds.key().into(),
            secret_access_key: creds.secret().into(),
            window_seconds: 10,
            path_style: true,
        },
        format: Format::Json,
        filter: BTreeMap::new(),
    };
    let created = store.create(spec, FeedStart::Beginning).await?;

    let _worker = tokio::process::Command::new(auditlog_testkit::auditlog_bin())
        .arg("stream-worker")
        .env("AUDITLOG_CLICKHOUSE__URL", &ch.url)
        .env("AUDITLOG_CLICKHOUSE__DATABASE", &ch.database)
        .env("AUDITLOG_STREAMS__LISTEN", "")
        .env("AUDITLOG_STREAMS__HEARTBEAT", "300ms")
        .env("AUDITLOG_STREAMS__WORKER_EXPIRY", "1s")
        .env("AUDITLOG_STREAMS__REFRESH", "300ms")
        .env("AUDITLOG_STREAMS__REQUEST_TIMEOUT", "2s")
        .envs(auditlog_testkit::cluster_vars(&ch))
        .kill_on_drop(true)
        .spawn()
        .context("spawn auditlog stream-worker")?;

    // Every event of the workspace arrives once, in objects under the workspace's prefix.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (keys, got) = loop {
        let keys = server.list(&bucket, "e2e/").await?;
        let mut got = Vec::new();
        for (key, _) in &keys {
            let (body, _) = server.get(&bucket, key).await?;
            for line in gunzip_lines(&body)? {
                got.push(line["event_id"].as_str().context("event_id")?.to_owned());
            }
        }
        if got.len() >= want.len() || std::time::Instant::now() > deadline {
            break (keys, got);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(
        sorted, want,
        "every event of the workspace once, no other: {keys:?}"
    );
    for (key, _) in &keys {
        // e2e/{ws}/{yyyy}/{mm}/{dd}/{HH}/{stream_id}.{generation}.{partition}-{offset}.ndjson.gz
        let rest = key.strip_prefix(&format!("e2e/{ws}/")).context("prefix")?;
        let parts: Vec<&str> = rest.split('/').collect();
        assert_eq!(parts.len(), 5, "{key}");
        assert!(parts[..4].iter().all(|p| p.parse::<u32>().is_ok()), "{key}");
        let name = format!("{}.0.", created.stream_id);
        assert!(
            parts[4].starts_with(&name) && parts[4].ends_with(".ndjson.gz"),
            "{key}"
        );
    }

    // The cursor is saved once the objects were acknowledged.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let cursors = store
            .cursors(std::slice::from_ref(&created.stream_id))
            .await?;
        let pos = cursors.first().and_then(|c| c.position.clone());
        // The workspace's last events: offset 29 of partition 0 (i = 58), 28 of partition 1 (i = 57).
        if pos.is_some_and(|p| p.offsets == BTreeMap::from([(0, 29), (1, 28)])) {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "cursor not saved: {cursors:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}
