//! Originals: reading messages back from the source topic at given offsets. A batch keeps
//! rows only (half the memory); when ClickHouse refuses a row, the write stage reads its
//! original message back to dead-letter it byte for byte. Nothing of the batch is committed
//! yet, so the message is still in the topic. [`Originals`] is the write stage's seam,
//! [`SourceReader`] the real one.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use auditlog_producer::kafka_log::LimitedLogs;
use auditlog_producer::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use crate::{Error, Result};

/// Reads back the messages behind rows.
pub trait Originals: Send + Sync {
    /// The messages at `offsets` of `partition`, in the order given. Commits nothing.
    fn fetch(
        &self,
        partition: i32,
        offsets: &[i64],
    ) -> impl Future<Output = Result<Vec<OwnedMessage>>> + Send;
}

/// Reads `topic` with a throwaway consumer per call.
pub struct SourceReader {
    kafka: KafkaConfig,
    topic: String,
}

impl SourceReader {
    /// A reader of `topic` on `kafka`'s brokers.
    pub fn new(kafka: &KafkaConfig, topic: &str) -> Self {
        Self {
            kafka: kafka.clone(),
            topic: topic.to_owned(),
        }
    }
}

impl Originals for SourceReader {
    async fn fetch(&self, partition: i32, offsets: &[i64]) -> Result<Vec<OwnedMessage>> {
        let kafka = self.kafka.clone();
        let topic = self.topic.clone();
        let offsets = offsets.to_vec();
        tokio::task::spawn_blocking(move || {
            fetch_originals_blocking(&kafka, &topic, partition, &offsets)
        })
        .await
        .map_err(|e| Error::Runtime(format!("original message reader: {e}")))?
    }
}

/// A consumer that reads assigned partitions and commits nothing (throwaway group).
pub(crate) fn reader(kafka: &KafkaConfig, what: &str) -> Result<BaseConsumer<LimitedLogs>> {
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
