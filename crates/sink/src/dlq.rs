//! The dead-letter producer: poison messages go to the dead-letter topic with their original
//! key, bytes and headers, plus headers saying why and where from. [`DeadLetters`] is the seam
//! the pipeline and the write stage send through. Reading the topic back and re-publishing it
//! (`auditlog dlq list|replay`) is [`crate::replay`].

use std::future::Future;
use std::time::Duration;

use auditlog_producer::KafkaConfig;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracing::warn;

use auditlog_producer::kafka_log::LimitedLogs;

use crate::decode::DeadLetter;
use crate::observe;
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

/// Where poison messages and refused rows go.
pub trait DeadLetters: Send + Sync {
    /// Sends `msg` with the reason `why`; returns once the broker acknowledged it (only then
    /// may the message's offset be committed).
    fn send(&self, msg: &OwnedMessage, why: &DeadLetter)
        -> impl Future<Output = Result<()>> + Send;
}

/// Dead-letters `m` with the reason: logged and counted by reason.
pub(crate) async fn dead_letter(
    dlq: &impl DeadLetters,
    m: &OwnedMessage,
    why: &DeadLetter,
) -> Result<()> {
    warn!(partition = m.partition(), offset = m.offset(), code = why.code, reason = %why.message, "dead-lettering message");
    dlq.send(m, why).await?;
    metrics::counter!(observe::DEAD_LETTERED, "reason" => why.code).increment(1);
    Ok(())
}

/// Publishes poison messages to the dead-letter topic and waits for the broker's ack.
pub struct DeadLetterProducer {
    producer: FutureProducer<LimitedLogs>,
    topic: String,
}

impl DeadLetterProducer {
    /// A producer for `topic` on `kafka`'s brokers (acks=all, idempotent).
    pub fn new(kafka: &KafkaConfig, topic: &str) -> Result<Self> {
        Ok(Self {
            producer: producer(kafka)?,
            topic: topic.to_owned(),
        })
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

/// A producer for the dead-letter topic and for replays (acks=all, idempotent, large messages).
pub(crate) fn producer(kafka: &KafkaConfig) -> Result<FutureProducer<LimitedLogs>> {
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

/// The headers of `msg` whose key `keep` accepts.
pub(crate) fn copy_headers(msg: &OwnedMessage, keep: impl Fn(&str) -> bool) -> OwnedHeaders {
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

impl DeadLetters for DeadLetterProducer {
    async fn send(&self, msg: &OwnedMessage, why: &DeadLetter) -> Result<()> {
        DeadLetterProducer::send(self, msg, why).await
    }
}
