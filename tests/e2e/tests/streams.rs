//! Stream delivery end to end: real ClickHouse, real `auditlog stream-worker` processes
//! (AUDITLOG_BIN), the testkit's real HTTP receiver. Events are seeded as the consumer writes
//! them (explicit partitions and offsets); the latency benchmark (`stream_bench`) runs the real
//! broker and consumer. Each test has its own database and receiver, so they run in parallel.
//!
//! - `flaky`: a receiver failing 50 % of requests; order, signatures, redeliveries counted.
//! - `outage`: a receiver down for a period (15 s; `AUDITLOG_LONG_TESTS=1`: 2 minutes).
//! - `slow`: a slow receiver does not slow a healthy stream of the same worker.
//! - `retry_after`: 429 with `Retry-After` is waited out.
//! - `sigkill`: the worker SIGKILLed mid-batch and restarted loses nothing.
//! - `two_workers`: streams shared, no overlapping requests per stream, a killed worker's
//!   streams taken over.
//! - `pause_resume_replay`: pause stops delivery, resume continues, replay re-delivers.
//! - `auto_pause`: failing longer than `streams.auto_pause_after` pauses the stream.

mod streams_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use auditlog_store::feed::FeedStart;
use auditlog_streams::{Desired, State};
use auditlog_testkit::{Receiver, ReceiverMode};
use streams_support::*;

fn long() -> bool {
    std::env::var_os("AUDITLOG_LONG_TESTS").is_some_and(|v| v == "1")
}

/// Every id of `expected` delivered, first deliveries in exactly that order.
fn assert_in_order(d: &Delivered, expected: &[String]) -> Result<()> {
    ensure!(
        d.order.len() == expected.len(),
        "{} distinct events delivered, {} expected",
        d.order.len(),
        expected.len()
    );
    let first_bad = d.order.iter().zip(expected).position(|(a, b)| a != b);
    ensure!(
        first_bad.is_none(),
        "out of order at {first_bad:?}: feed order not kept"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_receiver_gets_every_event_in_order_signed_and_redeliveries_are_counted() -> Result<()>
{
    let mut w = World::new("st_flaky").await?;
    let rx = Receiver::start().await?;
    rx.set_mode(ReceiverMode::FailFraction(0.5));
    let a = w
        .webhook("ws_a", &format!("{}/a", rx.url()), FeedStart::Beginning)
        .await?;
    let b = w
        .webhook("ws_b", &format!("{}/b", rx.url()), FeedStart::Beginning)
        .await?;
    let mut ea = w.seed("ws_a", 0, 3000).await?;
    let mut eb = w.seed("ws_b", 1, 2000).await?;
    let (mut worker, _) = w.spawn_worker("w")?;
    ea.extend(w.seed("ws_a", 0, 300).await?);
    eb.extend(w.seed("ws_b", 1, 300).await?);
    wait_delivered(&rx, &a.stream_id, &ea, Duration::from_secs(60)).await?;
    wait_delivered(&rx, &b.stream_id, &eb, Duration::from_secs(60)).await?;
    ensure!(terminate(&mut worker)?.success(), "worker exit status");

    let hooks = hooks(&rx.received())?;
    ensure!(hooks.iter().any(|h| !h.ok), "the receiver failed nothing");
    for (stream, expected) in [(&a, &ea), (&b, &eb)] {
        let d = delivered(&hooks, &stream.stream_id);
        assert_in_order(&d, expected)?;
        ensure!(d.repeated_acks == 0, "acknowledged twice without a crash");
        let status = w.status(&stream.stream_id).await?.context("no status")?;
        ensure!(
            status.redelivered_events == d.resent_after_failure,
            "worker counted {} redelivered events, the receiver saw {} resent",
            status.redelivered_events,
            d.resent_after_failure
        );
        ensure!(
            status.delivered_events == expected.len() as u64,
            "{status:?}"
        );
        // Every 500 the receiver answered is a failed attempt the worker counted.
        let failed = hooks
            .iter()
            .filter(|h| h.stream_id == stream.stream_id && !h.ok)
            .count() as u64;
        ensure!(
            status.failed_attempts == failed,
            "{failed} failed at the receiver: {status:?}"
        );
        ensure!(failed == 0 || !status.last_error.is_empty(), "{status:?}");
    }
    // Every request verifies with the stream's secret (Standard Webhooks), and a resent batch
    // keeps its webhook-id.
    let secret = |path: &str| {
        if path == "/a" {
            &a.secrets[0].secret
        } else {
            &b.secrets[0].secret
        }
    };
    let now = chrono::Utc::now().timestamp();
    for r in rx.received() {
        let id = r.header("webhook-id").context("webhook-id")?;
        let ts = r.header("webhook-timestamp").context("webhook-timestamp")?;
        let sig = r.header("webhook-signature").context("webhook-signature")?;
        ensure!(r.header("content-type") == Some("application/json"));
        auditlog_streams::signing::verify(secret(&r.path), id, ts, sig, &r.body, now, 600)
            .map_err(|e| anyhow::anyhow!("signature of {id} does not verify: {e:?}"))?;
        ensure!(r.json()?["batch_id"] == id, "webhook-id is the batch id");
        ensure!(auditlog_streams::signing::verify(
            secret(&r.path),
            id,
            ts,
            sig,
            b"tampered",
            now,
            600
        )
        .is_err());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_for_a_period_gets_everything_after() -> Result<()> {
    let outage = if long() {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(15)
    };
    let mut w = World::new("st_down").await?;
    let rx = Arc::new(Receiver::start().await?);
    let s = w.webhook("ws_a", &rx.url(), FeedStart::Beginning).await?;
    let mut expected = w.seed("ws_a", 0, 400).await?;
    let (mut worker, metrics) = w.spawn_worker("w")?;
    wait_delivered(&rx, &s.stream_id, &expected, Duration::from_secs(30)).await?;
    let up = rx.down_for(outage);
    // Events keep arriving during the outage.
    for _ in 0..3 {
        tokio::time::sleep(outage / 4).await;
        expected.extend(w.seed("ws_a", 0, 200).await?);
    }
    let status = w.status(&s.stream_id).await?.context("no status")?;
    ensure!(
        status.state == State::Failing,
        "failing during the outage: {status:?}"
    );
    ensure!(status.last_error.contains("webhook"), "{status:?}");
    up.await??;
    wait_delivered(&rx, &s.stream_id, &expected, Duration::from_secs(30)).await?;
    let redelivered = metric(&metrics, "auditlog_stream_redelivered_events_total").await?;
    ensure!(terminate(&mut worker)?.success());
    let d = delivered(&hooks(&rx.received())?, &s.stream_id);
    assert_in_order(&d, &expected)?;
    let status = w.status(&s.stream_id).await?.context("no status")?;
    ensure!(status.state == State::Active, "{status:?}");
    // Refused connections never reached the receiver: the worker counts at least what it saw.
    ensure!(status.redelivered_events >= d.resent_after_failure);
    ensure!(
        redelivered as u64 == status.redelivered_events,
        "metric {redelivered} vs {status:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_does_not_slow_a_healthy_stream() -> Result<()> {
    let mut w = World::new("st_slow").await?;
    let slow = Receiver::start().await?;
    slow.set_mode(ReceiverMode::Slow(Duration::from_millis(1500)));
    let fast = Receiver::start().await?;
    let s_slow = w.webhook("ws_a", &slow.url(), FeedStart::Beginning).await?;
    let s_fast = w.webhook("ws_b", &fast.url(), FeedStart::Beginning).await?;
    let slow_ids = w.seed("ws_a", 0, 1500).await?;
    let (mut worker, _) = w.spawn_worker("w")?;
    wait_delivered(&fast, &s_fast.stream_id, &[], Duration::from_secs(10)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // While the slow stream works through its batches, the healthy one delivers at once.
    let t0 = chrono::Utc::now().timestamp_millis();
    let fast_ids = w.seed("ws_b", 1, 50).await?;
    wait_delivered(&fast, &s_fast.stream_id, &fast_ids, Duration::from_secs(10)).await?;
    let took = fast.received().last().map_or(0, |r| r.at_ms) - t0;
    ensure!(
        took < 3000,
        "the healthy stream waited {took} ms behind the slow one"
    );
    wait_delivered(&slow, &s_slow.stream_id, &slow_ids, Duration::from_secs(30)).await?;
    ensure!(terminate(&mut worker)?.success());
    assert_in_order(
        &delivered(&hooks(&slow.received())?, &s_slow.stream_id),
        &slow_ids,
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_of_a_429_is_waited_out() -> Result<()> {
    let mut w = World::new("st_429").await?;
    let rx = Receiver::start().await?;
    rx.set_mode(ReceiverMode::TooMany {
        retry_after_s: 3,
        times: 2,
    });
    let s = w.webhook("ws_a", &rx.url(), FeedStart::Beginning).await?;
    let expected = w.seed("ws_a", 0, 100).await?;
    let (mut worker, _) = w.spawn_worker("w")?;
    wait_delivered(&rx, &s.stream_id, &expected, Duration::from_secs(30)).await?;
    ensure!(terminate(&mut worker)?.success());
    let got = rx.received();
    ensure!(got.len() >= 3 && got[0].status == 429 && got[1].status == 429 && got[2].ok());
    for pair in got[..3].windows(2) {
        let gap = pair[1].at_ms - pair[0].answered_ms;
        // Retry-After: 3 is honoured (not the 100 ms..1 s backoff of these settings).
        ensure!(
            gap >= 2900,
            "retried {gap} ms after a 429 with Retry-After: 3"
        );
    }
    ensure!(
        got[0].header("webhook-id") == got[2].header("webhook-id"),
        "the batch changed"
    );
    assert_in_order(&delivered(&hooks(&got)?, &s.stream_id), &expected)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sigkilled_mid_batch_and_restarted_loses_nothing() -> Result<()> {
    let mut w = World::new("st_kill").await?;
    let rx = Receiver::start().await?;
    rx.set_mode(ReceiverMode::Slow(Duration::from_millis(400)));
    let s = w.webhook("ws_a", &rx.url(), FeedStart::Beginning).await?;
    let expected = w.seed("ws_a", 0, 5000).await?;
    let (mut worker, _) = w.spawn_worker("w1")?;
    for round in 0..2 {
        // Kill while a request is in flight (the receiver is answering slowly).
        wait_until(Duration::from_secs(30), "a few deliveries", || {
            let n = rx.received().len();
            async move { Ok(n >= 3 * (round + 1)) }
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        signal(worker.id(), "KILL")?;
        let _ = worker.wait();
        let (next, _) = w.spawn_worker(&format!("w{}", round + 2))?;
        worker = next;
    }
    wait_delivered(&rx, &s.stream_id, &expected, Duration::from_secs(60)).await?;
    ensure!(terminate(&mut worker)?.success());
    let d = delivered(&hooks(&rx.received())?, &s.stream_id);
    assert_in_order(&d, &expected)?;
    eprintln!(
        "after 2 SIGKILLs: {} events acknowledged twice",
        d.repeated_acks
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_streams_without_overlap() -> Result<()> {
    let mut w = World::new("st_two").await?;
    let rx = Receiver::start().await?;
    rx.set_mode(ReceiverMode::Slow(Duration::from_millis(100)));
    let mut streams = Vec::new();
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..8 {
        let ws = format!("ws_{i}");
        let s = w.webhook(&ws, &rx.url(), FeedStart::Beginning).await?;
        expected.insert(s.stream_id.clone(), w.seed(&ws, i, 300).await?);
        streams.push(s);
    }
    let (mut w1, _) = w.spawn_worker("w1")?;
    let (mut w2, _) = w.spawn_worker("w2")?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (i, s) in streams.iter().enumerate() {
        let more = w.seed(&s.spec.workspace_id, i as i32, 300).await?;
        if let Some(e) = expected.get_mut(&s.stream_id) {
            e.extend(more);
        }
    }
    // Both deliver; then one dies and the other takes its streams over.
    wait_until(Duration::from_secs(30), "both workers delivering", || {
        let ids = streams
            .iter()
            .map(|s| s.stream_id.clone())
            .collect::<Vec<_>>();
        let store = w.store.clone();
        async move {
            let st = store.statuses(&ids).await?;
            let workers: std::collections::HashSet<_> =
                st.iter().map(|s| s.worker_id.clone()).collect();
            Ok(workers.len() >= 2)
        }
    })
    .await?;
    signal(w1.id(), "KILL")?;
    let _ = w1.wait();
    for (i, s) in streams.iter().enumerate() {
        let more = w.seed(&s.spec.workspace_id, i as i32, 200).await?;
        if let Some(e) = expected.get_mut(&s.stream_id) {
            e.extend(more);
        }
    }
    for s in &streams {
        wait_delivered(
            &rx,
            &s.stream_id,
            &expected[&s.stream_id],
            Duration::from_secs(60),
        )
        .await?;
    }
    ensure!(terminate(&mut w2)?.success());
    let hooks = hooks(&rx.received())?;
    for s in &streams {
        let mut mine: Vec<&Hook> = hooks
            .iter()
            .filter(|h| h.stream_id == s.stream_id)
            .collect();
        mine.sort_by_key(|h| h.at_ms);
        for pair in mine.windows(2) {
            ensure!(
                pair[1].at_ms >= pair[0].answered_ms,
                "stream {}: a request arrived at {} while another ran until {}",
                s.stream_id,
                pair[1].at_ms,
                pair[0].answered_ms
            );
        }
        assert_in_order(&delivered(&hooks, &s.stream_id), &expected[&s.stream_id])?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_replay() -> Result<()> {
    let mut w = World::new("st_pause").await?;
    let rx = Receiver::start().await?;
    let s = w.webhook("ws_a", &rx.url(), FeedStart::Beginning).await?;
    let first = w.seed("ws_a", 0, 100).await?;
    let (mut worker, _) = w.spawn_worker("w")?;
    wait_delivered(&rx, &s.stream_id, &first, Duration::from_secs(20)).await?;
    w.store
        .set_desired(&s.stream_id, Desired::Paused, "")
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rx.received().len();
    let replay_from = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = w.seed("ws_a", 0, 100).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(rx.received().len() == before, "delivered while paused");
    let st = w.status(&s.stream_id).await?.context("status")?;
    ensure!(st.state == State::Paused, "{st:?}");
    w.store
        .set_desired(&s.stream_id, Desired::Active, "")
        .await?;
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    wait_delivered(&rx, &s.stream_id, &all, Duration::from_secs(20)).await?;
    assert_in_order(&delivered(&hooks(&rx.received())?, &s.stream_id), &all)?;
    // Replay from before the second seed: those events come again, in order.
    let n_before_replay = rx.received().len();
    w.store
        .replay(&s.stream_id, FeedStart::Time(replay_from))
        .await?;
    wait_until(Duration::from_secs(20), "the replay", || {
        let again = hooks(&rx.received()[n_before_replay..]);
        let second = second.clone();
        async move {
            let ids: Vec<String> = again?
                .into_iter()
                .filter(|h| h.ok)
                .flat_map(|h| h.ids)
                .collect();
            Ok(ids == second)
        }
    })
    .await?;
    let replayed = hooks(&rx.received()[n_before_replay..])?;
    ensure!(
        replayed.iter().all(|h| h.batch_id.contains(".1.")),
        "generation 1 batch ids"
    );
    ensure!(terminate(&mut worker)?.success());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_longer_than_auto_pause_after_pauses_the_stream() -> Result<()> {
    let mut w = World::new("st_auto").await?;
    let rx = Receiver::start().await?;
    rx.set_mode(ReceiverMode::FailFraction(1.0));
    let s = w.webhook("ws_a", &rx.url(), FeedStart::Beginning).await?;
    w.seed("ws_a", 0, 10).await?;
    w.setting("auto_pause_after", "3s");
    let (mut worker, _) = w.spawn_worker("w")?;
    let store = w.store.clone();
    let id = s.stream_id.clone();
    wait_until(Duration::from_secs(20), "the automatic pause", || {
        let store = store.clone();
        let id = id.clone();
        async move {
            let got = store.get(&id).await?.context("stream")?;
            Ok(got.desired == Desired::Paused)
        }
    })
    .await?;
    let got = w.store.get(&s.stream_id).await?.context("stream")?;
    ensure!(
        got.paused_reason.contains("paused automatically"),
        "{got:?}"
    );
    ensure!(
        got.paused_reason.contains("500"),
        "the last error is in the reason: {got:?}"
    );
    let n = rx.received().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(rx.received().len() == n, "delivered after the pause");
    ensure!(terminate(&mut worker)?.success());
    let st = w.status(&s.stream_id).await?.context("status")?;
    ensure!(
        st.state == State::Paused && st.failed_attempts > 0,
        "{st:?}"
    );
    Ok(())
}
