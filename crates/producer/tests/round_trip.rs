//! Against the shared test broker (`STACK_PROFILE=test deploy/local/stack.sh up`): every
//! catalog type goes out and comes back identical, with its key and headers; invalid events
//! never reach the topic; the non-blocking path reports every event; only the last handle
//! closes.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_event::{decode, AuditEvent, KnownEvent};
use auditlog_producer::{CloseError, EmitError, KafkaConfig, OnFull, Producer, ProducerConfig};

async fn topic(prefix: &str) -> KafkaConfig {
    let name = auditlog_testkit::unique_name(prefix);
    auditlog_testkit::create_topic(&name, 3)
        .await
        .expect("the test stack's broker must be up");
    KafkaConfig {
        brokers: auditlog_testkit::brokers(),
        topic: name,
        ..KafkaConfig::default()
    }
}

#[tokio::test]
async fn every_catalog_type_round_trips_with_key_and_headers() {
    let kafka = topic("producer_rt").await;
    let producer = Producer::builder(&kafka).build().await.unwrap();
    let mut synth = Synth::new(SynthConfig {
        seed: 1,
        workspaces: 5,
        ..SynthConfig::default()
    });
    let mut sent: HashMap<uuid::Uuid, AuditEvent> = HashMap::new();
    for kind in KnownEvent::ALL {
        let event = synth.event_of(*kind);
        let delivery = producer.emit(&event).await.unwrap();
        assert_eq!(delivery.event_id, event.event_id);
        assert!(delivery.offset >= 0);
        sent.insert(event.event_id, event);
    }
    // An invalid event is refused before it reaches the client.
    let mut bad = synth.event_of(KnownEvent::KeyCreate);
    bad.targets[0].id.clear();
    match producer.emit(&bad).await {
        Err(EmitError::Invalid(e)) => assert_eq!(e.field, "targets[0].id"),
        other => panic!("{other:?}"),
    }
    let report = producer.close(Duration::from_secs(10)).await.unwrap();
    assert!(report.undelivered.is_empty(), "{report:?}");

    let records = tokio::task::spawn_blocking(move || {
        support::read_all(
            &kafka.brokers,
            &kafka.topic,
            KnownEvent::ALL.len(),
            Duration::from_secs(1),
            Duration::from_secs(30),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        records.len(),
        KnownEvent::ALL.len(),
        "exactly the valid events"
    );
    for r in records {
        let got = decode(&r.payload).unwrap();
        let want = &sent[&got.event_id];
        assert_eq!(&got, want);
        assert_eq!(r.payload, want.to_json_bytes(), "byte-identical");
        assert_eq!(r.key.as_deref(), Some(want.workspace_id.as_bytes()));
        let headers: HashMap<_, _> = r.headers.into_iter().collect();
        assert_eq!(headers["event_type"], want.event.as_str().as_bytes());
        assert_eq!(headers["schema_version"], b"1");
        assert_eq!(headers["content_type"], b"application/json");
        assert_eq!(headers.len(), 3);
    }
}

#[tokio::test]
async fn one_workspace_keeps_its_order_on_one_partition() {
    let kafka = topic("producer_order").await;
    let producer = Producer::builder(&kafka).build().await.unwrap();
    let mut synth = Synth::new(SynthConfig {
        seed: 2,
        workspaces: 1,
        ..SynthConfig::default()
    });
    let events: Vec<_> = (0..200).map(|_| synth.next_event()).collect();
    for e in &events {
        producer.enqueue(e, OnFull::Wait).await.unwrap();
    }
    assert!(producer.flush(Duration::from_secs(10)).await.is_complete());
    let records = tokio::task::spawn_blocking(move || {
        support::read_all(
            &kafka.brokers,
            &kafka.topic,
            200,
            Duration::from_millis(500),
            Duration::from_secs(30),
        )
    })
    .await
    .unwrap();
    let got: Vec<_> = records
        .iter()
        .map(|r| decode(&r.payload).unwrap().event_id)
        .collect();
    let want: Vec<_> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(got, want);
    assert!(records.iter().all(|r| r.partition == records[0].partition));
}

#[tokio::test]
async fn try_enqueue_reports_every_event_and_a_full_buffer() {
    let kafka = topic("producer_try").await;
    let outcomes = Arc::new(Mutex::new((0usize, 0usize)));
    let seen = Arc::clone(&outcomes);
    let cfg = ProducerConfig {
        buffer_capacity: 50,
        on_full: OnFull::Error,
        linger: Duration::from_millis(50),
        ..ProducerConfig::default()
    };
    let producer = Producer::builder(&kafka)
        .config(&cfg)
        .on_delivery(move |r| {
            let mut s = seen.lock().unwrap();
            match r {
                Ok(_) => s.0 += 1,
                Err(_) => s.1 += 1,
            }
        })
        .build()
        .await
        .unwrap();
    let mut synth = Synth::new(SynthConfig::default());
    let (mut accepted, mut full) = (0, 0);
    for _ in 0..2000 {
        match producer.try_enqueue(&synth.next_event()) {
            Ok(()) => accepted += 1,
            Err(EmitError::QueueFull { capacity: 50 }) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full > 0, "a 50-event buffer fills up");
    // With OnFull::Error, enqueue fails the same way instead of waiting.
    while producer.in_flight() < 50 {
        let _ = producer
            .try_enqueue(&synth.next_event())
            .map(|()| accepted += 1);
    }
    assert!(matches!(
        producer.enqueue(&synth.next_event(), OnFull::Error).await,
        Err(EmitError::QueueFull { .. })
    ));
    // With OnFull::Wait it waits for room, whatever the configured on_full (error here).
    producer
        .enqueue(&synth.next_event(), OnFull::Wait)
        .await
        .unwrap();
    accepted += 1;
    let report = producer.flush(Duration::from_secs(10)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.delivered, accepted as u64);
    assert_eq!(*outcomes.lock().unwrap(), (accepted, 0));
}

#[tokio::test]
async fn close_refuses_while_clones_remain_and_then_reports_everything() {
    let kafka = topic("producer_close").await;
    let producer = Producer::builder(&kafka).build().await.unwrap();
    let clone = producer.clone();
    let mut synth = Synth::new(SynthConfig::default());
    clone
        .enqueue(&synth.next_event(), OnFull::Wait)
        .await
        .unwrap();
    // A clone is open: nothing is flushed or closed, and this handle comes back usable.
    let producer = match producer.close(Duration::from_secs(10)).await {
        Err(CloseError::Shared { clones, producer }) => {
            assert_eq!(clones, 1);
            producer
        }
        other => panic!("{other:?}"),
    };
    producer.emit(&synth.next_event()).await.unwrap();
    clone
        .enqueue(&synth.next_event(), OnFull::Wait)
        .await
        .unwrap();
    drop(clone);
    // The last handle closes: the report covers what every clone enqueued.
    let report = producer.close(Duration::from_secs(10)).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.delivered, 3);
}
