//! Query API settings.

use serde::{Deserialize, Serialize};

/// HTTP API settings (`[api]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address. Default `127.0.0.1:8080`.
    pub listen: String,
    /// Admin bearer token (plans, tokens). Empty disables the admin endpoints. Default empty.
    pub admin_token: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_token: String::new(),
        }
    }
}
