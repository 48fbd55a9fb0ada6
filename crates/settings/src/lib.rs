//! What every config section shares: one error for a bad setting ([`BadSetting`], naming the
//! field as written in the config file), one duration style ([`duration`]: humantime strings
//! such as `"5ms"`, `"30s"`, `"2m"`; a bare number is refused), the checks the sections
//! repeat ([`check`]), the table of old setting names that now fail with a hint
//! ([`Renamed`]), and the configuration reference generated from the config structs
//! ([`reference`]: documented TOML and Markdown tables, read from a `schemars` schema).
//!
//! ```
//! use std::time::Duration;
//! use auditlog_settings::{check, BadSetting};
//!
//! let err = check::between("api.idle_timeout", Duration::ZERO, Duration::from_millis(100),
//!     Duration::from_secs(3600)).unwrap_err();
//! assert_eq!(err.field, "api.idle_timeout");
//! assert_eq!(err.to_string(), "api.idle_timeout: 0s is outside 100ms..=1h");
//! # let _: BadSetting = err;
//! ```

pub mod check;
pub mod duration;
#[cfg(feature = "endpoint")]
pub mod endpoint;
pub mod reference;

pub use duration::DurationSchema;

/// A setting that cannot be used: the field as written in the config file
/// (`consumer.batch_max_rows`, `producer.properties.acks`) and what is wrong with it.
/// Displayed as `field: reason`; every config section reports its errors with it, so startup
/// stops with the field named whichever section it is in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct BadSetting {
    /// `section.key`, as written in the config file.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl BadSetting {
    /// `field: reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Result of a check.
pub type Result<T = (), E = BadSetting> = std::result::Result<T, E>;

/// An old setting name that is no longer accepted: loading a config that still uses it fails
/// with `hint` naming the new setting (never silently ignored, never silently accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renamed {
    /// The section (`api`).
    pub section: &'static str,
    /// The old key in that section (`token_cache_ms`).
    pub old: &'static str,
    /// What replaced it (`renamed to api.token_cache, a duration such as "2s"`).
    pub hint: &'static str,
}

impl Renamed {
    /// The hint for `key` of `section`, if it is an old name in `table`.
    pub fn hint(table: &[Renamed], section: &str, key: &str) -> Option<&'static str> {
        table
            .iter()
            .find(|r| r.section == section && r.old == key)
            .map(|r| r.hint)
    }
}
