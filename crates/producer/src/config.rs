//! Kafka connection and producer settings.

use serde::{Deserialize, Serialize};

/// Where the audit topics live (`[kafka]` in the config file). Shared by producer and consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, comma separated. Default `127.0.0.1:9092`.
    pub brokers: String,
    /// The audit events topic. Default `audit-events`.
    pub topic: String,
    /// The dead-letter topic. Default `audit-events-dlq`.
    pub dlq_topic: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "audit-events".into(),
            dlq_topic: "audit-events-dlq".into(),
        }
    }
}

/// Producer tuning (`[producer]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {}
    }
}
