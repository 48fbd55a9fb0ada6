//! Replay: reading the dead-letter topic back (`auditlog dlq list`) and re-publishing its
//! messages to the main topic (`auditlog dlq replay`).

use std::collections::HashMap;
use std::time::Duration;

use auditlog_producer::KafkaConfig;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Headers, Message, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::dlq::{copy_headers, producer, H_CODE, H_MESSAGE, H_OFFSET, H_PARTITION, H_TOPIC};
use crate::originals::reader;
use crate::{Error, Result};

/// Header on a replayed message: `dlq_topic/partition/offset` it was replayed from.
pub const H_REPLAYED_FROM: &str = "dlq.replayed_from";

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
