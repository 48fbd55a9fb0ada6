//! Producer throughput and latency against a real Tansu broker, with the baseline in the same
//! run: an rdkafka `BaseProducer` sending the same pre-serialized bytes (same key, same
//! headers, same client settings) in a tight loop.
//!
//! ```text
//! cargo bench -p auditlog-producer --bench throughput
//! BENCH_EVENTS=200000 BENCH_ROUNDS=3 BENCH_BROKERS=127.0.0.1:19092 cargo bench -p auditlog-producer --bench throughput
//! ```
//! Without `BENCH_BROKERS` it starts a private Tansu broker with memory storage on a free port
//! (so other users of the test stack neither disturb nor are disturbed); with it, topics named
//! `bench-*` are created on that broker with the `tansu` CLI.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_event::AuditEvent;
use auditlog_producer::{EmitError, KafkaConfig, Producer, ProducerConfig};
use hdrhistogram::Histogram;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};

const PARTITIONS: u32 = 3;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Target {
    brokers: String,
    port: u16,
    _own: Option<support::Broker>,
}

impl Target {
    fn topic(&self, name: &str) -> String {
        let out = std::process::Command::new(support::tansu_bin())
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &PARTITIONS.to_string(),
            ])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .output()
            .expect("tansu topic create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        name.to_owned()
    }
}

struct Run {
    events_per_s: f64,
    mb_per_s: f64,
}

fn throughput(n: usize, bytes: usize, took: Duration) -> Run {
    Run {
        events_per_s: n as f64 / took.as_secs_f64(),
        mb_per_s: bytes as f64 / 1e6 / took.as_secs_f64(),
    }
}

/// The baseline: pre-serialized payloads, same key and headers, same client settings.
fn baseline(brokers: &str, topic: &str, payloads: &[(String, &'static str, Vec<u8>)]) -> Run {
    let kafka = KafkaConfig {
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        ..KafkaConfig::default()
    };
    let producer: BaseProducer = Producer::builder(&kafka)
        .client_config()
        .expect("client settings")
        .create()
        .expect("baseline producer");
    let start = Instant::now();
    let mut bytes = 0;
    for (key, event_type, payload) in payloads {
        bytes += payload.len();
        loop {
            let headers = OwnedHeaders::new_with_capacity(3)
                .insert(Header {
                    key: "event_type",
                    value: Some(*event_type),
                })
                .insert(Header {
                    key: "schema_version",
                    value: Some("1"),
                })
                .insert(Header {
                    key: "content_type",
                    value: Some("application/json"),
                });
            let rec = BaseRecord::<str, [u8]>::to(topic)
                .key(key)
                .payload(payload)
                .headers(headers);
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, _)) => {
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("baseline flush");
    throughput(payloads.len(), bytes, start.elapsed())
}

struct Ours {
    run: Run,
    enqueue: Histogram<u64>,
    ack: Histogram<u64>,
}

/// The library: `try_enqueue` (validate, serialize, produce) for every event; a full buffer is
/// waited out with a 100 µs sleep that is not counted as enqueue time.
async fn ours(kafka: &KafkaConfig, events: &[AuditEvent]) -> Ours {
    let acks = Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap()));
    let seen = Arc::clone(&acks);
    let producer = Producer::builder(kafka)
        .on_delivery(move |r| {
            if let Ok(d) = r {
                let _ = seen.lock().unwrap().record(d.latency.as_micros() as u64);
            }
        })
        .build()
        .await
        .expect("producer");
    let mut enqueue = Histogram::<u64>::new(3).unwrap();
    let start = Instant::now();
    for e in events {
        loop {
            let t = Instant::now();
            match producer.try_enqueue(e) {
                Ok(()) => {
                    let _ = enqueue.record(t.elapsed().as_nanos() as u64);
                    break;
                }
                Err(EmitError::QueueFull { .. }) => std::thread::sleep(Duration::from_micros(100)),
                Err(err) => panic!("{err}"),
            }
        }
    }
    let report = producer
        .close(Duration::from_secs(120))
        .await
        .expect("one handle");
    let took = start.elapsed();
    assert!(
        report.undelivered.is_empty(),
        "{} undelivered",
        report.undelivered.len()
    );
    // Counted outside the timed path.
    let bytes: usize = events.iter().map(|e| e.to_json_bytes().len()).sum();
    let ack = acks.lock().unwrap().clone();
    Ours {
        run: throughput(events.len(), bytes, took),
        enqueue,
        ack,
    }
}

/// Unloaded `emit` latency: one event at a time, each awaited until acknowledged.
async fn emit_one_by_one(kafka: &KafkaConfig, events: &[AuditEvent]) -> Histogram<u64> {
    let cfg = ProducerConfig {
        linger: Duration::ZERO,
        ..ProducerConfig::default()
    };
    let producer = Producer::builder(kafka)
        .config(&cfg)
        .build()
        .await
        .expect("producer");
    let mut h = Histogram::<u64>::new(3).unwrap();
    for e in events {
        let t = Instant::now();
        producer.emit(e).await.expect("emit");
        let _ = h.record(t.elapsed().as_micros() as u64);
    }
    h
}

fn main() {
    let n: usize = env("BENCH_EVENTS", 200_000);
    let rounds: usize = env("BENCH_ROUNDS", 3);
    let target = match std::env::var("BENCH_BROKERS") {
        Ok(brokers) => {
            let port = brokers
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("host:port");
            Target {
                brokers,
                port,
                _own: None,
            }
        }
        Err(_) => {
            let b = support::Broker::start_with("memory://tansu/");
            Target {
                brokers: b.brokers(),
                port: b.port,
                _own: Some(b),
            }
        }
    };
    let storage = if target._own.is_some() {
        "private Tansu, memory storage"
    } else {
        "BENCH_BROKERS"
    };
    let events: Vec<AuditEvent> = Synth::new(SynthConfig {
        seed: 42,
        workspaces: 50,
        target_bytes: Some(1024),
        ..SynthConfig::default()
    })
    .take(n)
    .collect();
    let payloads: Vec<(String, &'static str, Vec<u8>)> = events
        .iter()
        .map(|e| {
            let kind = e.event.known().map_or("custom", |k| k.as_str());
            (e.workspace_id.clone(), kind, e.to_json_bytes())
        })
        .collect();
    let avg = payloads.iter().map(|p| p.2.len()).sum::<usize>() / n;
    println!("# producer benchmark: {n} events (avg {avg} bytes), {rounds} rounds, {PARTITIONS} partitions, broker {} ({storage})", target.brokers);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut base_runs = Vec::new();
    let mut our_runs = Vec::new();
    let mut enqueue = Histogram::<u64>::new(3).unwrap();
    let mut ack = Histogram::<u64>::new(3).unwrap();
    for round in 0..rounds {
        // Alternate which side goes first, so drift (broker memory growth, other load on the
        // machine) does not always favour the same side.
        for side in [round % 2, 1 - round % 2] {
            if side == 0 {
                let topic = target.topic(&format!("bench-base-{}-{round}", std::process::id()));
                let b = baseline(&target.brokers, &topic, &payloads);
                println!(
                    "round {round}: baseline {:>9.0} events/s {:>7.1} MB/s",
                    b.events_per_s, b.mb_per_s
                );
                base_runs.push(b);
            } else {
                let kafka = KafkaConfig {
                    brokers: target.brokers.clone(),
                    topic: target.topic(&format!("bench-ours-{}-{round}", std::process::id())),
                    ..KafkaConfig::default()
                };
                let o = rt.block_on(ours(&kafka, &events));
                println!(
                    "round {round}: producer {:>9.0} events/s {:>7.1} MB/s",
                    o.run.events_per_s, o.run.mb_per_s
                );
                enqueue.add(&o.enqueue).unwrap();
                ack.add(&o.ack).unwrap();
                our_runs.push(o.run);
            }
        }
    }
    let kafka = KafkaConfig {
        brokers: target.brokers.clone(),
        topic: target.topic(&format!("bench-emit-{}", std::process::id())),
        ..KafkaConfig::default()
    };
    let one_by_one = rt.block_on(emit_one_by_one(&kafka, &events[..2000.min(n)]));

    let mean = |runs: &[Run]| runs.iter().map(|r| r.events_per_s).sum::<f64>() / runs.len() as f64;
    let mean_mb = |runs: &[Run]| runs.iter().map(|r| r.mb_per_s).sum::<f64>() / runs.len() as f64;
    let (b, o) = (mean(&base_runs), mean(&our_runs));
    println!();
    println!("| | events/s | MB/s |");
    println!("|---|---|---|");
    println!(
        "| baseline (BaseProducer, pre-serialized) | {b:.0} | {:.1} |",
        mean_mb(&base_runs)
    );
    println!(
        "| auditlog-producer (validate + serialize + try_enqueue) | {o:.0} | {:.1} |",
        mean_mb(&our_runs)
    );
    println!("| ratio | {:.1} % | |", 100.0 * o / b);
    println!();
    println!("| latency | p50 | p99 | p99.9 | max |");
    println!("|---|---|---|---|---|");
    let us = |h: &Histogram<u64>, q: f64, scale: f64| h.value_at_quantile(q) as f64 / scale;
    println!(
        "| enqueue (try_enqueue: validate, serialize, produce) | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
        us(&enqueue, 0.5, 1e3), us(&enqueue, 0.99, 1e3), us(&enqueue, 0.999, 1e3), enqueue.max() as f64 / 1e3
    );
    println!(
        "| enqueue to ack, under full load | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
        us(&ack, 0.5, 1e3),
        us(&ack, 0.99, 1e3),
        us(&ack, 0.999, 1e3),
        ack.max() as f64 / 1e3
    );
    println!(
        "| emit to ack, one at a time (linger 0) | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
        us(&one_by_one, 0.5, 1e3),
        us(&one_by_one, 0.99, 1e3),
        us(&one_by_one, 0.999, 1e3),
        one_by_one.max() as f64 / 1e3
    );
}
