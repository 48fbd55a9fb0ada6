//! Partitions: what the pipeline and the write stage ask of the Kafka consumer about the
//! partitions of the topic (the group's committed offset, seek, commit, pause and resume),
//! behind a narrow trait so they can be tested without Kafka. [`KafkaPartitions`] is the real
//! one. The calls block (librdkafka round trips): async callers run the slow ones through
//! `spawn_blocking`.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

use crate::consume::SinkConsumer;

/// How long a committed-offset read or a seek may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The topic's partitions as the consumer sees them.
pub trait Partitions: Send + Sync {
    /// The group's committed offset of `partition` (`None` when nothing is committed).
    fn committed(&self, partition: i32) -> KafkaResult<Option<i64>>;
    /// Moves the fetch position of `partition` to `offset`.
    fn seek(&self, partition: i32, offset: i64) -> KafkaResult<()>;
    /// Commits the next offset to read per partition, `(partition, offset)`.
    fn commit(&self, offsets: &[(i32, i64)], mode: CommitMode) -> KafkaResult<()>;
    /// Stops fetching every assigned partition.
    fn pause(&self) -> KafkaResult<()>;
    /// Fetches every assigned partition again.
    fn resume(&self) -> KafkaResult<()>;
}

/// The consumer's partitions of `topic`.
#[derive(Clone)]
pub struct KafkaPartitions {
    consumer: Arc<SinkConsumer>,
    topic: String,
}

impl KafkaPartitions {
    /// The partitions of `topic` that `consumer` reads.
    pub fn new(consumer: Arc<SinkConsumer>, topic: impl Into<String>) -> Self {
        Self {
            consumer,
            topic: topic.into(),
        }
    }
}

impl Partitions for KafkaPartitions {
    fn committed(&self, partition: i32) -> KafkaResult<Option<i64>> {
        let mut tpl = TopicPartitionList::new();
        let _ = tpl.add_partition(&self.topic, partition);
        let tpl = self.consumer.committed_offsets(tpl, TIMEOUT)?;
        Ok(
            match tpl
                .find_partition(&self.topic, partition)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(c)) => Some(c),
                _ => None,
            },
        )
    }

    fn seek(&self, partition: i32, offset: i64) -> KafkaResult<()> {
        self.consumer
            .seek(&self.topic, partition, Offset::Offset(offset), TIMEOUT)
    }

    fn commit(&self, offsets: &[(i32, i64)], mode: CommitMode) -> KafkaResult<()> {
        let mut tpl = TopicPartitionList::new();
        for &(p, next) in offsets {
            let _ = tpl.add_partition_offset(&self.topic, p, Offset::Offset(next));
        }
        self.consumer.commit(&tpl, mode)
    }

    fn pause(&self) -> KafkaResult<()> {
        self.consumer.pause(&self.consumer.assignment()?)
    }

    fn resume(&self) -> KafkaResult<()> {
        self.consumer.resume(&self.consumer.assignment()?)
    }
}
