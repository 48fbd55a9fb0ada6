//! Consumer settings.

use serde::{Deserialize, Serialize};

/// Consumer settings (`[consumer]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Consumer group id. Default `auditlog-sink`.
    pub group_id: String,
    /// Address of the `/metrics` and `/health` endpoints. Default `127.0.0.1:8081`.
    pub metrics_listen: String,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            group_id: "auditlog-sink".into(),
            metrics_listen: "127.0.0.1:8081".into(),
        }
    }
}
