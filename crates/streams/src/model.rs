//! The stream model: what a workspace configures (a [`StreamSpec`]), what is stored about it
//! ([`Stream`]), where its worker is ([`CursorRecord`]) and how delivery goes
//! ([`StreamStatus`]). Shared by the admin API, the CLI and `auditlog stream-worker`.

use std::collections::BTreeMap;

use auditlog_formats::Format;
use auditlog_store::{FeedPosition, FeedStart};
use serde::{Deserialize, Serialize};

/// What a workspace asks for when it creates a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamSpec {
    /// The workspace whose events are delivered.
    pub workspace_id: String,
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// Where events go.
    pub destination: Destination,
    /// The shape of each event.
    #[serde(default)]
    pub format: Format,
    /// The list endpoint's filter parameters (`event`, `actor_type`, ...; not `since`/`until`),
    /// name -> value, as `GET /v1/events` takes them.
    #[serde(default)]
    pub filter: BTreeMap<String, String>,
}

/// A destination and its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Destination {
    /// HTTPS webhook: JSON batches signed per the Standard Webhooks scheme (docs/streams.md).
    Webhook {
        /// `https://` (or `http://` on loopback) URL that receives `POST`s.
        url: String,
    },
    /// Splunk HTTP Event Collector.
    SplunkHec {
        /// Base URL of the collector (`https://splunk:8088`); events go to `/services/collector/event`.
        url: String,
        /// The HEC token (`Authorization: Splunk <token>`).
        token: String,
        /// Splunk index (default: the token's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<String>,
        /// Source type (default `auditlog`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sourcetype: Option<String>,
    },
    /// Datadog logs intake (v2).
    Datadog {
        /// Intake URL (`https://http-intake.logs.datadoghq.com`); events go to `/api/v2/logs`.
        url: String,
        /// `DD-API-KEY`.
        api_key: String,
        /// `service` of each log (default `auditlog`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
        /// `ddtags` (`env:prod,team:x`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<String>,
    },
    /// An S3-compatible bucket: gzipped NDJSON objects per time window.
    S3 {
        /// Endpoint URL (`https://s3.eu-west-1.amazonaws.com`, or a MinIO/moto URL).
        endpoint: String,
        /// Bucket name.
        bucket: String,
        /// Region (`us-east-1`).
        region: String,
        /// Key prefix (`audit/`).
        #[serde(default)]
        prefix: String,
        /// Access key id.
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
        /// Seconds of events per object (default 60).
        #[serde(default = "default_window")]
        window_seconds: u32,
        /// Path-style URLs (`endpoint/bucket/key`; MinIO, moto); default virtual-hosted.
        #[serde(default)]
        path_style: bool,
    },
}

fn default_window() -> u32 {
    60
}

/// What the workspace wants of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    /// Deliver.
    Active,
    /// Do not deliver; the cursor stays where it is.
    Paused,
    /// Gone: the worker stops and forgets it.
    Deleted,
}

/// How delivery goes, as the worker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Delivering (or caught up).
    Active,
    /// The last attempts failed; retrying with backoff.
    Failing,
    /// Paused, by the workspace or automatically after failing too long.
    Paused,
}

/// A webhook signing secret (`whsec_` + base64 of 32 random bytes). During a rotation the
/// old secret keeps signing (a second signature) until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SigningSecret {
    /// `whsec_...`.
    pub secret: String,
    /// When it was created, epoch ms.
    pub created_at_ms: i64,
    /// When it stops signing, epoch ms (`None`: current secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
}

/// A stream as stored (newest version of its row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stream {
    /// `str_` + 24 random characters.
    pub stream_id: String,
    /// What was configured.
    #[serde(flatten)]
    pub spec: StreamSpec,
    /// What the workspace wants.
    pub desired: Desired,
    /// Why it is paused when the worker paused it (`""` otherwise).
    #[serde(default)]
    pub paused_reason: String,
    /// Webhook signing secrets, current first (empty for other destinations).
    #[serde(default)]
    pub secrets: Vec<SigningSecret>,
    /// Epoch ms.
    pub created_at_ms: i64,
    /// Epoch ms of this version.
    pub updated_at_ms: i64,
}

/// Where a stream's delivery is. `generation` grows with every replay: a worker that still
/// writes positions of an older generation never overrides a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorRecord {
    /// The stream.
    pub stream_id: String,
    /// Replay generation (0 at creation).
    pub generation: u64,
    /// Last acknowledged position (`None`: not started in this generation; use `start`).
    pub position: Option<FeedPosition>,
    /// Where this generation starts.
    pub start: FeedStart,
    /// Epoch ms of this record.
    pub updated_at_ms: i64,
}

/// Delivery figures of one stream, written by the worker that owns it (every few seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamStatus {
    /// The stream.
    pub stream_id: String,
    /// Current state.
    pub state: State,
    /// Last error (`""` when none yet).
    pub last_error: String,
    /// When it happened, epoch ms.
    pub last_error_at_ms: Option<i64>,
    /// Failing without a success since, epoch ms.
    pub failing_since_ms: Option<i64>,
    /// Events acknowledged by the destination (this worker's count since it took the stream, plus the stored count).
    pub delivered_events: u64,
    /// Batches acknowledged.
    pub delivered_batches: u64,
    /// Failed attempts.
    pub failed_attempts: u64,
    /// Events delivered more than once (a batch resent after an unacknowledged attempt).
    pub redelivered_events: u64,
    /// Visible events not yet acknowledged.
    pub lag_events: u64,
    /// Age of the oldest visible event not yet acknowledged, seconds (0 when caught up).
    pub lag_seconds: f64,
    /// Which worker reported it.
    pub worker_id: String,
    /// Epoch ms of this report.
    pub updated_at_ms: i64,
}
