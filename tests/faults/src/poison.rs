//! Poison bursts: raw bytes published straight to the events topic (not JSON, invalid UTF-8,
//! schema violations, an unknown schema version, too large), and the check that each one is in
//! the dead-letter topic with its original bytes and a reason.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use auditlog_event::AuditEvent;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sha2::{Digest, Sha256};

/// Dead-letter headers set by the consumer (`auditlog_sink::dlq`).
const H_CODE: &str = "dlq.error.code";
const H_MESSAGE: &str = "dlq.error.message";
const H_PARTITION: &str = "dlq.source.partition";
const H_OFFSET: &str = "dlq.source.offset";

/// One poison message published.
#[derive(Debug, Clone)]
pub struct Poison {
    pub kind: &'static str,
    pub partition: i32,
    pub offset: i64,
}

/// The kinds of poison, in the order a burst cycles through them.
pub const KINDS: [&str; 6] = [
    "not_json",
    "invalid_utf8",
    "missing_field",
    "bad_event_type",
    "unknown_version",
    "too_large",
];

/// Bytes of poison message `n` of kind `kind`; `valid` is a well-formed event to damage.
fn poison_bytes(kind: &str, n: u64, valid: &AuditEvent) -> Vec<u8> {
    let mut json: serde_json::Value =
        serde_json::from_slice(&valid.to_json_bytes()).unwrap_or_default();
    match kind {
        "not_json" => format!("poison #{n}: this is not JSON {{").into_bytes(),
        "invalid_utf8" => {
            let mut b = format!("{{\"poison\": {n}, \"x\": \"").into_bytes();
            b.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
            b.extend_from_slice(b"\"}");
            b
        }
        "missing_field" => {
            if let Some(o) = json.as_object_mut() {
                o.remove("workspace_id");
                o.insert("description".into(), format!("poison #{n}").into());
            }
            json.to_string().into_bytes()
        }
        "bad_event_type" => {
            if let Some(o) = json.as_object_mut() {
                o.insert("event".into(), format!("Not A Type #{n}").into());
            }
            json.to_string().into_bytes()
        }
        "unknown_version" => {
            if let Some(o) = json.as_object_mut() {
                o.insert("version".into(), 999.into());
                o.insert("description".into(), format!("poison #{n}").into());
            }
            json.to_string().into_bytes()
        }
        _ => {
            // Over the 1 MiB event limit, still under the broker's message size limit.
            if let Some(o) = json.as_object_mut() {
                o.insert("request".into(), "x".repeat(1_100_000).into());
                o.insert("description".into(), format!("poison #{n}").into());
            }
            json.to_string().into_bytes()
        }
    }
}

/// Publishes raw poison messages.
pub struct PoisonProducer {
    inner: FutureProducer,
    topic: String,
    /// sha256 of the bytes -> what was published.
    pub published: HashMap<[u8; 32], Poison>,
    /// Poison the broker refused (not expected in the DLQ).
    pub refused: Vec<String>,
    next: u64,
}

impl std::fmt::Debug for PoisonProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoisonProducer")
            .field("published", &self.published.len())
            .finish()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl PoisonProducer {
    pub fn new(brokers: &str, topic: &str) -> Result<Self> {
        let inner = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("message.max.bytes", "4000000")
            .set("message.timeout.ms", "60000")
            .create()
            .context("create poison producer")?;
        Ok(Self {
            inner,
            topic: topic.to_string(),
            published: HashMap::new(),
            refused: Vec::new(),
            next: 0,
        })
    }

    /// Publishes `count` poison messages cycling through every kind, all at once (a burst),
    /// and waits for the broker's answers (at most 30 s).
    pub async fn burst(&mut self, count: usize, valid: &AuditEvent) {
        let messages: Vec<(u64, &'static str, Vec<u8>)> = (0..count)
            .map(|_| {
                let n = self.next;
                self.next += 1;
                let kind = KINDS[(n % KINDS.len() as u64) as usize];
                (n, kind, poison_bytes(kind, n, valid))
            })
            .collect();
        let sends = messages.iter().map(|(n, _, bytes)| {
            let key = format!("poison-{n}");
            let inner = &self.inner;
            let topic = &self.topic;
            async move {
                let record = FutureRecord::to(topic).key(&key).payload(bytes);
                inner.send(record, Duration::from_secs(30)).await
            }
        });
        let results = futures::future::join_all(sends).await;
        for ((n, kind, bytes), result) in messages.iter().zip(results) {
            match result {
                Ok(d) => {
                    self.published.insert(
                        digest(bytes),
                        Poison {
                            kind,
                            partition: d.partition,
                            offset: d.offset,
                        },
                    );
                }
                Err((e, _)) => self.refused.push(format!("{kind} #{n}: {e}")),
            }
        }
    }
}

/// What the dead-letter topic showed.
#[derive(Debug, Default)]
pub struct DlqCheck {
    /// Poison messages found with a reason.
    pub found: u64,
    /// Poison messages found without `dlq.error.code` / `dlq.error.message`.
    pub without_reason: u64,
    /// Dead-lettered messages that were not poison (good events sent to the DLQ).
    pub unexpected: u64,
    /// Poison dead-lettered with source partition/offset headers that do not match.
    pub wrong_source: Vec<String>,
    /// Published poison not found in the DLQ.
    pub missing: Vec<String>,
    /// One reason per kind (for the report).
    pub reasons: Vec<(String, String)>,
}

/// Reads the whole DLQ topic (polling until every published poison message is there or
/// `timeout` passes) and matches it with what was published.
pub async fn check_dlq(
    brokers: &str,
    dlq_topic: &str,
    published: &HashMap<[u8; 32], Poison>,
    timeout: Duration,
) -> Result<DlqCheck> {
    let brokers = brokers.to_string();
    let topic = dlq_topic.to_string();
    let published = published.clone();
    tokio::task::spawn_blocking(move || read_dlq(&brokers, &topic, &published, timeout)).await?
}

fn read_dlq(
    brokers: &str,
    topic: &str,
    published: &HashMap<[u8; 32], Poison>,
    timeout: Duration,
) -> Result<DlqCheck> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "auditlog-faults-dlq-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.message.max.bytes", "8000000")
        .set("receive.message.max.bytes", "100000000")
        .create()
        .context("create DLQ reader")?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .context("DLQ metadata")?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl).context("assign DLQ partitions")?;
    let mut check = DlqCheck::default();
    let mut seen: HashMap<[u8; 32], ()> = HashMap::new();
    let deadline = Instant::now() + timeout;
    while seen.len() < published.len() && Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let msg = msg.context("read DLQ")?;
        let payload = msg.payload().unwrap_or_default();
        let d = digest(payload);
        let Some(p) = published.get(&d) else {
            check.unexpected += 1;
            continue;
        };
        if seen.insert(d, ()).is_some() {
            continue;
        }
        let header = |name: &str| {
            msg.headers().and_then(|h| {
                h.iter()
                    .find(|x| x.key == name)
                    .map(|x| String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned())
            })
        };
        let code = header(H_CODE).unwrap_or_default();
        let message = header(H_MESSAGE).unwrap_or_default();
        let source = (header(H_PARTITION), header(H_OFFSET));
        let expected = (Some(p.partition.to_string()), Some(p.offset.to_string()));
        if code.is_empty() || message.is_empty() {
            check.without_reason += 1;
        } else if source != expected {
            check.wrong_source.push(format!(
                "{} from partition {} offset {} dead-lettered with source {:?}",
                p.kind, p.partition, p.offset, source
            ));
        } else {
            check.found += 1;
            if !check.reasons.iter().any(|(k, _)| k == p.kind) {
                check
                    .reasons
                    .push((p.kind.to_string(), format!("{code}: {message}")));
            }
        }
    }
    // Any good event that was dead-lettered after the last poison message.
    while let Some(Ok(msg)) = consumer.poll(Duration::from_millis(500)) {
        if !published.contains_key(&digest(msg.payload().unwrap_or_default())) {
            check.unexpected += 1;
        }
    }
    let mut missing: Vec<&Poison> = published
        .iter()
        .filter(|(d, _)| !seen.contains_key(*d))
        .map(|(_, p)| p)
        .collect();
    missing.sort_unstable_by_key(|p| (p.partition, p.offset));
    check.missing = missing
        .iter()
        .map(|p| {
            format!(
                "{} at partition {} offset {}",
                p.kind, p.partition, p.offset
            )
        })
        .collect();
    check.reasons.sort();
    Ok(check)
}
