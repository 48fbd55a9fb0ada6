//! A private Tansu broker restarted in the middle of a stream of events: with the idempotent
//! producer nothing is lost and nothing is duplicated.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use auditlog_event::decode;
use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_producer::{KafkaConfig, OnFull, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_and_duplicates_nothing() {
    let mut broker = support::Broker::start();
    broker.create_topic("audit-restart", 3);
    let kafka = KafkaConfig {
        brokers: broker.brokers(),
        topic: "audit-restart".into(),
        ..KafkaConfig::default()
    };
    let cfg = ProducerConfig {
        delivery_timeout: Duration::from_secs(90),
        ..ProducerConfig::default()
    };
    let first_error = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let seen = std::sync::Arc::clone(&first_error);
    let producer = Producer::builder(&kafka)
        .config(&cfg)
        .on_delivery(move |r| {
            if let Err(e) = r {
                seen.lock().unwrap().get_or_insert_with(|| format!("{e}"));
            }
        })
        .build()
        .await
        .unwrap();
    let mut synth = Synth::new(SynthConfig {
        seed: 9,
        workspaces: 12,
        ..SynthConfig::default()
    });
    const N: usize = 3000;
    let mut sent = HashSet::new();
    let started = Instant::now();
    for i in 0..N {
        let event = synth.next_event();
        sent.insert(event.event_id);
        producer.enqueue(&event, OnFull::Wait).await.unwrap();
        if i == N / 3 {
            // Let some of the stream be acknowledged, then pull the broker away under it.
            tokio::time::sleep(Duration::from_millis(200)).await;
            tokio::task::block_in_place(|| broker.restart(Duration::from_secs(2)));
        }
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let report = producer.close(Duration::from_secs(90)).await.unwrap();
    assert!(
        report.undelivered.is_empty(),
        "{} of {N} events not delivered; first error: {:?}\nbroker log:\n{}",
        report.undelivered.len(),
        first_error.lock().unwrap(),
        broker.log_tail(30)
    );
    assert_eq!(report.delivered, N as u64);
    eprintln!(
        "{N} events through a broker restart in {:?}",
        started.elapsed()
    );

    let brokers = broker.brokers();
    let records = tokio::task::spawn_blocking(move || {
        support::read_all(
            &brokers,
            "audit-restart",
            N,
            Duration::from_secs(2),
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    let ids: Vec<_> = records
        .iter()
        .map(|r| decode(&r.payload).unwrap().event_id)
        .collect();
    let unique: HashSet<_> = ids.iter().copied().collect();
    assert_eq!(ids.len() - unique.len(), 0, "duplicates on the topic");
    assert_eq!(unique, sent, "every event exactly once");
}
