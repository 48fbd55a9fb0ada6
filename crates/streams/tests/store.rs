//! `StreamStore` against the test stack's ClickHouse (a fresh database per test): create,
//! list, pause/resume/delete, rotation, replay generations, batched cursor and status writes,
//! worker liveness by the server's clock.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use auditlog_store::{FeedPosition, FeedStart};
use auditlog_streams::{
    CursorRecord, Desired, Destination, Error, State, StreamSpec, StreamStatus, StreamStore,
};

async fn store(prefix: &str) -> Result<StreamStore> {
    let ch = auditlog_testkit::fresh_database(prefix).await?;
    Ok(StreamStore::new(ch.client()))
}

fn webhook(ws: &str) -> StreamSpec {
    StreamSpec {
        workspace_id: ws.into(),
        name: "siem".into(),
        destination: Destination::Webhook {
            url: "http://127.0.0.1:9/hook".into(),
        },
        format: auditlog_formats::Format::Ocsf,
        filter: BTreeMap::from([("event".to_owned(), "key.*".to_owned())]),
    }
}

fn splunk(ws: &str) -> StreamSpec {
    StreamSpec {
        destination: Destination::SplunkHec {
            url: "https://splunk.example:8088".into(),
            token: "hec-token-0123456789".into(),
            index: Some("audit".into()),
            sourcetype: None,
        },
        ..webhook(ws)
    }
}

#[tokio::test]
async fn streams_are_created_listed_changed_and_deleted() -> Result<()> {
    let store = store("streams_crud").await?;
    let a = store.create(webhook("ws_a"), FeedStart::Beginning).await?;
    assert!(a.stream_id.starts_with("str_"));
    assert_eq!(a.desired, Desired::Active);
    assert_eq!(a.secrets.len(), 1);
    assert!(a.secrets[0].secret.starts_with("whsec_"));
    let b = store.create(splunk("ws_b"), FeedStart::Now).await?;
    assert!(b.secrets.is_empty(), "only webhooks sign");

    // Read back exactly as created.
    assert_eq!(store.get(&a.stream_id).await?, Some(a.clone()));
    assert_eq!(store.get("str_unknown").await?, None);
    let all = store.list(None).await?;
    assert_eq!(all, vec![a.clone(), b.clone()]);
    assert_eq!(store.list(Some("ws_b")).await?, vec![b.clone()]);
    assert!(store.list(Some("ws_none")).await?.is_empty());
    assert_eq!(store.all_active().await?.len(), 2);

    // Pause (with a reason), resume, pause again without one.
    let p = store
        .set_desired(&a.stream_id, Desired::Paused, "failing for 1h")
        .await?;
    assert_eq!(
        (p.desired, p.paused_reason.as_str()),
        (Desired::Paused, "failing for 1h")
    );
    assert!(p.updated_at_ms > a.updated_at_ms);
    assert_eq!(store.get(&a.stream_id).await?, Some(p.clone()));
    let active: Vec<String> = store
        .all_active()
        .await?
        .into_iter()
        .map(|s| s.stream_id)
        .collect();
    assert_eq!(active, vec![b.stream_id.clone()]);
    let r = store
        .set_desired(&a.stream_id, Desired::Active, "ignored")
        .await?;
    assert_eq!((r.desired, r.paused_reason.as_str()), (Desired::Active, ""));
    assert_eq!(store.all_active().await?.len(), 2);

    // Delete: gone from lists, credentials emptied, further changes are NotFound.
    let d = store
        .set_desired(&b.stream_id, Desired::Deleted, "")
        .await?;
    match &d.spec.destination {
        Destination::SplunkHec { token, .. } => assert!(token.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.list(None).await?.len(), 1);
    assert_eq!(
        store.get(&b.stream_id).await?.map(|s| s.desired),
        Some(Desired::Deleted)
    );
    for e in [
        store
            .set_desired(&b.stream_id, Desired::Active, "")
            .await
            .unwrap_err(),
        store
            .replay(&b.stream_id, FeedStart::Beginning)
            .await
            .unwrap_err(),
        store
            .set_desired("str_unknown", Desired::Paused, "")
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    }
    Ok(())
}

#[tokio::test]
async fn invalid_specs_are_refused_naming_the_field_and_store_nothing() -> Result<()> {
    let store = store("streams_invalid").await?;
    let mut spec = webhook("ws_a");
    spec.destination = Destination::Webhook {
        url: "http://hooks.example.com/".into(),
    };
    let e = store.create(spec, FeedStart::Now).await.unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { field, .. } if field == "destination.url"),
        "{e:?}"
    );
    assert!(store.list(None).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_signing_for_a_while() -> Result<()> {
    let store = store("streams_rotate").await?;
    let s = store.create(webhook("ws_a"), FeedStart::Now).await?;
    let first = s.secrets[0].secret.clone();
    let r = store
        .rotate_secret(&s.stream_id, Duration::from_secs(3600))
        .await?;
    assert_eq!(r.secrets.len(), 2);
    assert_ne!(r.secrets[0].secret, first);
    assert_eq!(r.secrets[0].expires_at_ms, None);
    assert_eq!(r.secrets[1].secret, first);
    let expires = r.secrets[1].expires_at_ms.expect("old secret expires");
    assert_eq!(expires, r.updated_at_ms + 3_600_000);
    assert_eq!(store.get(&s.stream_id).await?, Some(r.clone()));
    // Both sign now.
    let now = r.updated_at_ms;
    let header = auditlog_streams::signing::sign(&r.secrets, now, "b1", now / 1000, b"{}");
    assert_eq!(header.split(' ').count(), 2, "{header}");
    // A rotation with no grace drops every old secret.
    let z = store.rotate_secret(&s.stream_id, Duration::ZERO).await?;
    assert_eq!(z.secrets.len(), 1);
    assert_ne!(z.secrets[0].secret, r.secrets[0].secret);
    // Non-webhooks have nothing to rotate.
    let b = store.create(splunk("ws_a"), FeedStart::Now).await?;
    let e = store
        .rotate_secret(&b.stream_id, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { field, .. } if field == "destination"),
        "{e:?}"
    );
    Ok(())
}

#[tokio::test]
async fn replays_start_new_generations_that_old_positions_cannot_override() -> Result<()> {
    let store = store("streams_cursor").await?;
    let s = store.create(webhook("ws_a"), FeedStart::Now).await?;
    let ids = vec![s.stream_id.clone()];
    let c0 = store.cursors(&ids).await?.remove(0);
    assert_eq!((c0.generation, &c0.position), (0, &None));
    // `now` is stored as the server's time at creation.
    let FeedStart::Time(at) = c0.start else {
        panic!("{:?}", c0.start)
    };
    assert!(
        (at - s.created_at_ms).abs() < 60_000,
        "{at} vs {}",
        s.created_at_ms
    );

    let mut pos = FeedPosition::beginning();
    pos.advance(0, 41);
    pos.advance(3, 7);
    let saved = CursorRecord {
        position: Some(pos.clone()),
        updated_at_ms: c0.updated_at_ms + 10,
        ..c0.clone()
    };
    store.save_cursors(std::slice::from_ref(&saved)).await?;
    assert_eq!(store.cursors(&ids).await?, vec![saved.clone()]);

    let replayed = store.replay(&s.stream_id, FeedStart::Time(1_000)).await?;
    assert_eq!(replayed.generation, 1);
    assert_eq!(replayed.position, None);
    assert_eq!(replayed.start, FeedStart::Time(1_000));
    // A worker still on generation 0 writes a newer position: the replay stays.
    let stale = CursorRecord {
        updated_at_ms: replayed.updated_at_ms + 60_000,
        ..saved
    };
    store.save_cursors(&[stale]).await?;
    assert_eq!(store.cursors(&ids).await?, vec![replayed.clone()]);
    let again = store.replay(&s.stream_id, FeedStart::Beginning).await?;
    assert_eq!((again.generation, again.start), (2, FeedStart::Beginning));

    // Many streams in one insert; unknown ids have no cursor.
    let others: Vec<_> = (0..3)
        .map(|i| CursorRecord {
            stream_id: format!("str_other{i}"),
            generation: 0,
            position: Some(pos.clone()),
            start: FeedStart::Beginning,
            updated_at_ms: 5,
        })
        .collect();
    store.save_cursors(&others).await?;
    let mut asked: Vec<String> = others.iter().map(|c| c.stream_id.clone()).collect();
    asked.push("str_none".into());
    assert_eq!(store.cursors(&asked).await?, others);
    assert!(store.cursors(&[]).await?.is_empty());
    Ok(())
}

fn status(id: &str, state: State, delivered: u64, at: i64) -> StreamStatus {
    let failing = state == State::Failing;
    StreamStatus {
        stream_id: id.into(),
        state,
        last_error: if failing {
            "HTTP 503".into()
        } else {
            String::new()
        },
        last_error_at_ms: failing.then_some(at - 5),
        failing_since_ms: failing.then_some(at - 50),
        delivered_events: delivered,
        delivered_batches: delivered / 10,
        failed_attempts: 2,
        redelivered_events: 1,
        lag_events: 12,
        lag_seconds: 1.5,
        worker_id: "w1".into(),
        updated_at_ms: at,
    }
}

#[tokio::test]
async fn statuses_are_written_in_one_batch_and_the_newest_wins() -> Result<()> {
    let store = store("streams_status").await?;
    let first = vec![
        status("str_a", State::Active, 100, 1_000),
        status("str_b", State::Failing, 0, 1_000),
    ];
    store.save_statuses(&first).await?;
    let newer = status("str_a", State::Paused, 150, 2_000);
    store.save_statuses(std::slice::from_ref(&newer)).await?;
    let got = store
        .statuses(&["str_a".into(), "str_b".into(), "str_c".into()])
        .await?;
    assert_eq!(got, vec![newer, first[1].clone()]);
    Ok(())
}

#[tokio::test]
async fn live_workers_are_those_with_a_recent_heartbeat() -> Result<()> {
    let store = store("streams_workers").await?;
    assert!(store
        .live_workers(Duration::from_secs(10))
        .await?
        .is_empty());
    store.heartbeat("w2").await?;
    store.heartbeat("w1").await?;
    store.heartbeat("w1").await?;
    assert_eq!(
        store.live_workers(Duration::from_secs(10)).await?,
        vec!["w1", "w2"]
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    store.heartbeat("w2").await?;
    assert_eq!(
        store.live_workers(Duration::from_millis(1000)).await?,
        vec!["w2"]
    );
    Ok(())
}
