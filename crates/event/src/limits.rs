//! The validation limits, in one place. Sizes are bytes of UTF-8 / serialized JSON.

use chrono::{DateTime, TimeDelta, Utc};

/// Largest serialized event accepted: 1 MiB.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Largest serialized `request` or `response` payload, each: 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Largest serialized `meta` object of an actor or a target, each: 16 KiB.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Longest `description`: 1 KiB.
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// Longest id (`workspace_id`, `actor.id`, `targets[i].id`, `correlation_id`): 256 bytes.
pub const MAX_ID_LEN: usize = 256;
/// Longest display name (`actor.name`, `targets[i].name`): 256 bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest `bucket` and `targets[i].type`: 64 bytes.
pub const MAX_BUCKET_LEN: usize = 64;
/// Most targets one event may name.
pub const MAX_TARGETS: usize = 100;
/// Longest `context.user_agent`: 512 bytes.
pub const MAX_USER_AGENT_LEN: usize = 512;
/// Longest `context.location`: 128 bytes.
pub const MAX_LOCATION_LEN: usize = 128;
/// Longest `outcome.reason`: 256 bytes.
pub const MAX_REASON_LEN: usize = 256;
/// How far in the future `time` may be (clock skew allowance): 1 hour.
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::hours(1);

/// The earliest accepted `time`: 2000-01-01T00:00:00Z.
pub fn min_time() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}
