//! The dead-letter topic: poison messages go there with their original key, bytes and headers,
//! plus headers saying why and where from. Also reading it back (`auditlog dlq list`) and
//! re-publishing to the main topic (`auditlog dlq replay`).

use std::collections::HashMap;
use std::time::Duration;

use auditlog_producer::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use auditlog_producer::kafka_log::LimitedLogs;

use crate::decode::DeadLetter;
use crate::{Error, Result};

/// Header: the reason code (`not_json`, `invalid_field`, ...).
pub const H_CODE: &str = "dlq.error.code";
/// Header: the readable reason.
pub const H_MESSAGE: &str = "dlq.error.message";
/// Header: the topic the message was read from.
pub const H_TOPIC: &str = "dlq.source.topic";
/// Header: its partition.
pub const H_PARTITION: &str = "dlq.source.partition";
/// Header: its offset.
pub const H_OFFSET: &str = "dlq.source.offset";
/// Header: when it was dead-lettered (RFC 3339).
pub const H_AT: &str = "dlq.failed_at";
/// Header set when the payload had to be truncated to fit the broker: the original size.
pub const H_TRUNCATED: &str = "dlq.payload.truncated_from";
/// Payload bytes kept when the broker refuses the whole message.
const TRUNCATED_BYTES: usize = 64 * 1024;
/// Header on a replayed message: `dlq_topic/partition/offset` it was replayed from.
pub const H_REPLAYED_FROM: &str = "dlq.replayed_from";

/// Publishes poison messages to the dead-letter topic and waits for the broker's ack.
pub struct DeadLetterProducer {
    producer: FutureProducer<LimitedLogs>,
    topic: String,
    kafka: KafkaConfig,
}

impl DeadLetterProducer {
    /// A producer for `topic` on `kafka`'s brokers (acks=all, idempotent).
    pub fn new(kafka: &KafkaConfig, topic: &str) -> Result<Self> {
        Ok(Self {
            producer: producer(kafka)?,
            topic: topic.to_owned(),
            kafka: kafka.clone(),
        })
    }

    /// Reads back the messages at `offsets` of `topic`/`partition` (the originals of rows
    /// ClickHouse refused: batches keep rows only), in the order given. Commits nothing.
    pub async fn fetch_originals(
        &self,
        topic: &str,
        partition: i32,
        offsets: &[i64],
    ) -> Result<Vec<OwnedMessage>> {
        let kafka = self.kafka.clone();
        let topic = topic.to_owned();
        let offsets = offsets.to_vec();
        tokio::task::spawn_blocking(move || {
            fetch_originals_blocking(&kafka, &topic, partition, &offsets)
        })
        .await
        .map_err(|e| Error::Runtime(format!("original message reader: {e}")))?
    }

    /// Sends `msg` (read from `msg.topic()`) to the dead-letter topic and returns once the
    /// broker acknowledged it: only then may the message's offset be committed.
    pub async fn send(&self, msg: &OwnedMessage, why: &DeadLetter) -> Result<()> {
        let mut headers = copy_headers(msg, |k| {
            !k.starts_with("dlq.error.") && !k.starts_with("dlq.source.") && k != H_AT
        });
        let at = chrono::Utc::now().to_rfc3339();
        let partition = msg.partition().to_string();
        let offset = msg.offset().to_string();
        for (k, v) in [
            (H_CODE, why.code),
            (H_MESSAGE, why.message.as_str()),
            (H_TOPIC, msg.topic()),
            (H_PARTITION, partition.as_str()),
            (H_OFFSET, offset.as_str()),
            (H_AT, at.as_str()),
        ] {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let payload = msg.payload();
        match self.produce(msg.key(), payload, headers.clone()).await {
            Err(rdkafka::error::KafkaError::MessageProduction(
                rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge,
            )) if payload.is_some_and(|p| p.len() > TRUNCATED_BYTES) => {
                // Larger than the broker takes: keep a prefix and say how big it was (the full
                // message stays in the source topic at the offset in the headers).
                let full = payload.map_or(0, <[u8]>::len).to_string();
                let headers = headers.insert(Header {
                    key: H_TRUNCATED,
                    value: Some(full.as_str()),
                });
                let head = payload.map(|p| &p[..TRUNCATED_BYTES]);
                self.produce(msg.key(), head, headers).await
            }
            other => other,
        }
        .map_err(|e| Error::kafka(format!("dead-letter to {}", self.topic), e))
    }

    async fn produce(
        &self,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<(), rdkafka::error::KafkaError> {
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(headers);
        if let Some(p) = payload {
            record = record.payload(p);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        self.producer
            .send(record, Duration::from_secs(60))
            .await
            .map(drop)
            .map_err(|(e, _)| e)
    }
}

fn producer(kafka: &KafkaConfig) -> Result<FutureProducer<LimitedLogs>> {
    kafka
        .client_config()?
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "300000")
        // Poison may be as large as anything the broker accepted on the source topic.
        .set("message.max.bytes", "67108864")
        .create_with_context(LimitedLogs)
        .map_err(|e| Error::kafka("create dead-letter producer", e))
}

fn copy_headers(msg: &OwnedMessage, keep: impl Fn(&str) -> bool) -> OwnedHeaders {
    let mut out = OwnedHeaders::new();
    if let Some(h) = msg.headers() {
        for header in h.iter().filter(|h| keep(h.key)) {
            out = out.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    out
}

/// A message read back from the dead-letter topic.
#[derive(Debug, Clone)]
pub struct DeadLettered {
    /// Partition in the dead-letter topic.
    pub partition: i32,
    /// Offset in the dead-letter topic.
    pub offset: i64,
    /// Reason code.
    pub code: String,
    /// Readable reason.
    pub reason: String,
    /// `topic/partition/offset` it came from.
    pub source: String,
    /// The original message (key, payload and headers as dead-lettered).
    pub message: OwnedMessage,
}

impl DeadLettered {
    /// The first `n` characters of the payload, lossy UTF-8, on one line.
    pub fn preview(&self, n: usize) -> String {
        let text = String::from_utf8_lossy(self.message.payload().unwrap_or_default());
        let one_line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if one_line.chars().count() > n {
            format!("{}...", one_line.chars().take(n).collect::<String>())
        } else {
            one_line
        }
    }
}

fn header_map(msg: &OwnedMessage) -> HashMap<String, String> {
    msg.headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the whole dead-letter topic `topic` (every partition, from the beginning to the end
/// as of now), oldest first per partition. Commits nothing.
pub async fn read_all(kafka: &KafkaConfig, topic: &str) -> Result<Vec<DeadLettered>> {
    let kafka = kafka.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || read_all_blocking(&kafka, &topic))
        .await
        .map_err(|e| Error::Runtime(format!("dead-letter reader: {e}")))?
}

/// A consumer that reads assigned partitions and commits nothing (throwaway group).
fn reader(kafka: &KafkaConfig, what: &str) -> Result<BaseConsumer<LimitedLogs>> {
    kafka
        .client_config()?
        .set(
            "group.id",
            format!("auditlog-{what}-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create_with_context(LimitedLogs)
        .map_err(|e| Error::kafka(format!("create {what}"), e))
}

fn fetch_originals_blocking(
    kafka: &KafkaConfig,
    topic: &str,
    partition: i32,
    offsets: &[i64],
) -> Result<Vec<OwnedMessage>> {
    let Some(&first) = offsets.iter().min() else {
        return Ok(Vec::new());
    };
    let last = offsets.iter().copied().max().unwrap_or(first);
    let consumer = reader(kafka, "original-reader")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(first))
        .map_err(|e| Error::kafka("assign", e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| Error::kafka(format!("assign {topic}/{partition}"), e))?;
    let mut found: HashMap<i64, OwnedMessage> = HashMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while found.len() < offsets.len() && std::time::Instant::now() < deadline {
        let Some(r) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = r.map_err(|e| Error::kafka(format!("read {topic}/{partition}"), e))?;
        if offsets.contains(&m.offset()) {
            found.insert(m.offset(), m.detach());
        } else if m.offset() > last {
            break;
        }
    }
    offsets
        .iter()
        .map(|o| {
            found.remove(o).ok_or_else(|| {
                Error::Runtime(format!(
                    "could not read back the message at {topic}/{partition}/{o}"
                ))
            })
        })
        .collect()
}

fn read_all_blocking(kafka: &KafkaConfig, topic: &str) -> Result<Vec<DeadLettered>> {
    let consumer = reader(kafka, "dlq-reader")?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| Error::kafka(format!("metadata of {topic}"), e))?;
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, p.id(), timeout)
                .map_err(|e| Error::kafka(format!("watermarks of {topic}/{}", p.id()), e))?;
            if high > low {
                ends.insert(p.id(), high);
                tpl.add_partition_offset(topic, p.id(), Offset::Offset(low))
                    .map_err(|e| Error::kafka("assign", e))?;
            }
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer
        .assign(&tpl)
        .map_err(|e| Error::kafka(format!("assign {topic}"), e))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() && std::time::Instant::now() < deadline {
        let Some(r) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = r
            .map_err(|e| Error::kafka(format!("read {topic}"), e))?
            .detach();
        if ends
            .get(&m.partition())
            .is_some_and(|&end| m.offset() + 1 >= end)
        {
            ends.remove(&m.partition());
        }
        let h = header_map(&m);
        let get = |k: &str| h.get(k).cloned().unwrap_or_default();
        out.push(DeadLettered {
            partition: m.partition(),
            offset: m.offset(),
            code: get(H_CODE),
            reason: get(H_MESSAGE),
            source: format!("{}/{}/{}", get(H_TOPIC), get(H_PARTITION), get(H_OFFSET)),
            message: m,
        });
    }
    if !ends.is_empty() {
        return Err(Error::Runtime(format!("timed out reading {topic}")));
    }
    out.sort_by_key(|d| (d.partition, d.offset));
    Ok(out)
}

/// Re-publishes dead-lettered messages to `topic` (the main topic) with their original key and
/// headers (minus the dead-letter ones, plus [`H_REPLAYED_FROM`]). `payload` replaces the
/// payload of every message when given (a corrected event). Returns how many were sent.
pub async fn republish(
    kafka: &KafkaConfig,
    topic: &str,
    dlq_topic: &str,
    items: &[DeadLettered],
    payload: Option<&[u8]>,
) -> Result<usize> {
    let producer = producer(kafka)?;
    for d in items {
        let from = format!("{dlq_topic}/{}/{}", d.partition, d.offset);
        let headers = copy_headers(&d.message, |k| !k.starts_with("dlq.")).insert(Header {
            key: H_REPLAYED_FROM,
            value: Some(from.as_str()),
        });
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
        if let Some(p) = payload.or(d.message.payload()) {
            record = record.payload(p);
        }
        if let Some(k) = d.message.key() {
            record = record.key(k);
        }
        producer
            .send(record, Duration::from_secs(60))
            .await
            .map_err(|(e, _)| Error::kafka(format!("replay {from} to {topic}"), e))?;
    }
    Ok(items.len())
}
