//! No broker, a broker that goes away, a missing topic: clear errors within the configured
//! timeouts, never a hang.

mod support;

use std::time::{Duration, Instant};

use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_producer::{EmitError, KafkaConfig, Producer, ProducerConfig, ProducerError};

#[tokio::test]
async fn new_fails_within_the_startup_timeout_when_no_broker_listens() {
    let kafka = KafkaConfig {
        brokers: format!("127.0.0.1:{}", support::free_port()),
        ..KafkaConfig::default()
    };
    let cfg = ProducerConfig {
        startup_timeout: Duration::from_secs(2),
        ..ProducerConfig::default()
    };
    let started = Instant::now();
    let err = Producer::builder(&kafka)
        .config(&cfg)
        .build()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(matches!(err, ProducerError::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&kafka.brokers) && msg.contains("startup_timeout"),
        "{msg}"
    );
}

#[tokio::test]
async fn new_names_a_missing_topic() {
    let broker = support::Broker::start();
    let kafka = KafkaConfig {
        brokers: broker.brokers(),
        topic: "no-such-topic".into(),
        ..KafkaConfig::default()
    };
    let err = Producer::builder(&kafka).build().await.unwrap_err();
    assert!(
        matches!(err, ProducerError::TopicMissing { ref topic, .. } if topic == "no-such-topic"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_fails_within_the_delivery_timeout_when_the_broker_is_gone() {
    let mut broker = support::Broker::start();
    broker.create_topic("audit-gone", 1);
    let kafka = KafkaConfig {
        brokers: broker.brokers(),
        topic: "audit-gone".into(),
        ..KafkaConfig::default()
    };
    let cfg = ProducerConfig {
        delivery_timeout: Duration::from_secs(3),
        ..ProducerConfig::default()
    };
    let producer = Producer::builder(&kafka)
        .config(&cfg)
        .build()
        .await
        .unwrap();
    let mut synth = Synth::new(SynthConfig::default());
    producer.emit(&synth.next_event()).await.unwrap();

    broker.kill();
    let event = synth.next_event();
    let started = Instant::now();
    let err = producer.emit(&event).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "took {took:?}");
    match &err {
        EmitError::Delivery { event_id, .. } => assert_eq!(*event_id, event.event_id),
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
    assert!(err.to_string().contains("delivery_timeout"), "{err}");

    // The non-blocking path: flush names exactly the events that did not make it.
    let more: Vec<_> = (0..5).map(|_| synth.next_event()).collect();
    for e in &more {
        producer.try_enqueue(e).unwrap();
    }
    let report = producer.close(Duration::from_millis(500)).await.unwrap();
    let mut want: Vec<_> = std::iter::once(event.event_id)
        .chain(more.iter().map(|e| e.event_id))
        .collect();
    let mut got = report.undelivered.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(report.delivered, 1);
}
