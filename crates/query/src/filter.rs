//! The typed filter of list, count and export reads, parsed from request parameters.
//! Every error names the parameter.

use auditlog_event::{ActorType, EventType, OutcomeStatus};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::params::Params;
use crate::{Error, Result};

/// Longest accepted value of one id-like parameter, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;
/// Most entries in `event`.
pub const MAX_EVENT_ENTRIES: usize = 100;
/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 1000;

/// Earliest accepted `since`/`until` (the `DateTime64` range starts in 1900).
const MIN_MS: i64 = -2_208_988_800_000; // 1900-01-01
/// Latest accepted `since`/`until`.
const MAX_MS: i64 = 10_413_792_000_000; // 2300-01-01

/// Parameters of the filter (shared by list, counts and export): the names of
/// [`FilterParams`], in its order (a test checks).
pub const FILTER_PARAMS: &[&str] = &[
    "event",
    "actor_type",
    "actor_id",
    "target_type",
    "target_id",
    "bucket",
    "since",
    "until",
    "correlation_id",
    "outcome",
    "q",
];

/// The filter parameters as documented (the OpenAPI document and docs/api.md's table come
/// from these docs). An empty value counts as absent; values are at most [`MAX_VALUE_LEN`]
/// bytes. [`Filter::from_params`] parses them.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterParams {
    /// Comma-separated event types (`key.create`); an entry `resource.*` is every event of
    /// that resource (`key.*`); at most 100 entries.
    pub event: Option<String>,
    /// Actor type: `user`, `root_key` or `system`.
    #[param(inline)]
    pub actor_type: Option<ActorType>,
    /// Actor id, exact.
    pub actor_id: Option<String>,
    /// Type of a target, exact; with `target_id`, the same target has both.
    pub target_type: Option<String>,
    /// Id of a target, exact; with `target_type`, the same target has both.
    pub target_id: Option<String>,
    /// Bucket, exact.
    pub bucket: Option<String>,
    /// Inclusive lower bound of `time`: RFC 3339 or epoch milliseconds, 1900..2300; earlier
    /// than `until`.
    pub since: Option<String>,
    /// Exclusive upper bound of `time`: RFC 3339 or epoch milliseconds, 1900..2300.
    pub until: Option<String>,
    /// Correlation id, exact.
    pub correlation_id: Option<String>,
    /// Outcome: `success` or `failure`.
    #[param(inline)]
    pub outcome: Option<OutcomeStatus>,
    /// Case-insensitive substring of the description (UTF-8 aware).
    pub q: Option<String>,
}

/// The `order` parameter of list and export, parsed by [`Order::from_params`].
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderParam {
    /// `desc` (newest first, the default) or `asc`, by `(time, event_id)`.
    #[param(inline, default = json!(Order::Desc))]
    pub order: Option<Order>,
}

/// The page parameters of the list ([`limit_from_params`]; the cursor is checked by
/// [`crate::cursor::CursorKey::decode`]).
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1..=1000, default 50.
    #[param(minimum = 1, maximum = 1000, default = json!(DEFAULT_LIMIT))]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (same filters and order); empty: the first page.
    pub cursor: Option<String>,
}

/// A string parameter taking one of `values`.
pub(crate) fn one_of(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// Which events to read. Every field narrows the result; empty = no condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exact event types (`key.create`).
    pub events: Vec<String>,
    /// Whole resources (`key` for `key.*`).
    pub resources: Vec<String>,
    /// Actor type.
    pub actor_type: Option<ActorType>,
    /// Actor id.
    pub actor_id: Option<String>,
    /// A target's type (with `target_id`: the same target has both).
    pub target_type: Option<String>,
    /// A target's id.
    pub target_id: Option<String>,
    /// Bucket.
    pub bucket: Option<String>,
    /// Inclusive lower bound, epoch milliseconds.
    pub since_ms: Option<i64>,
    /// Exclusive upper bound, epoch milliseconds.
    pub until_ms: Option<i64>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Outcome.
    pub outcome: Option<OutcomeStatus>,
    /// Case-insensitive substring of the description.
    pub text: Option<String>,
}

/// Sort order by `(time, event_id)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Newest first (default).
    #[default]
    Desc,
    /// Oldest first.
    Asc,
}

impl Order {
    /// `DESC` or `ASC`.
    pub fn sql(self) -> &'static str {
        match self {
            Order::Desc => "DESC",
            Order::Asc => "ASC",
        }
    }

    /// Parses the `order` parameter (`desc`, `asc`; absent = `desc`).
    pub fn from_params(p: &Params) -> Result<Self> {
        match p.get("order").filter(|v| !v.is_empty()) {
            None | Some("desc") => Ok(Order::Desc),
            Some("asc") => Ok(Order::Asc),
            Some(v) => Err(Error::bad(
                "order",
                format!("{} is not desc or asc", shown(v)),
            )),
        }
    }
}

/// Parses the `limit` parameter: 1..=[`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
pub fn limit_from_params(p: &Params) -> Result<u32> {
    match p.get("limit").filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(Error::bad(
                "limit",
                format!("{} is not an integer in 1..={MAX_LIMIT}", shown(v)),
            )),
        },
    }
}

impl Filter {
    /// Parses the filter parameters ([`FILTER_PARAMS`]); empty values count as absent.
    pub fn from_params(p: &Params) -> Result<Self> {
        let mut f = Filter::default();
        if let Some(list) = value(p, "event")? {
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                if let Some(resource) = entry.strip_suffix(".*") {
                    if !EventType::is_well_formed(&format!("{resource}.x")) {
                        return Err(Error::bad(
                            "event",
                            format!("{} is not a resource wildcard like key.*", shown(entry)),
                        ));
                    }
                    f.resources.push(resource.to_owned());
                } else if EventType::is_well_formed(entry) {
                    f.events.push(entry.to_owned());
                } else {
                    return Err(Error::bad(
                        "event",
                        format!(
                            "{} is not an event type like key.create or a wildcard like key.*",
                            shown(entry)
                        ),
                    ));
                }
            }
            if f.events.len() + f.resources.len() > MAX_EVENT_ENTRIES {
                return Err(Error::bad(
                    "event",
                    format!("more than {MAX_EVENT_ENTRIES} entries"),
                ));
            }
        }
        f.actor_type = value(p, "actor_type")?
            .map(|v| {
                ActorType::parse(v).ok_or_else(|| {
                    Error::bad(
                        "actor_type",
                        format!("{} is not user, root_key or system", shown(v)),
                    )
                })
            })
            .transpose()?;
        f.actor_id = value(p, "actor_id")?.map(str::to_owned);
        f.target_type = value(p, "target_type")?.map(str::to_owned);
        f.target_id = value(p, "target_id")?.map(str::to_owned);
        f.bucket = value(p, "bucket")?.map(str::to_owned);
        f.correlation_id = value(p, "correlation_id")?.map(str::to_owned);
        f.text = value(p, "q")?.map(str::to_owned);
        f.outcome = value(p, "outcome")?
            .map(|v| match v {
                "success" => Ok(OutcomeStatus::Success),
                "failure" => Ok(OutcomeStatus::Failure),
                _ => Err(Error::bad(
                    "outcome",
                    format!("{} is not success or failure", shown(v)),
                )),
            })
            .transpose()?;
        f.since_ms = value(p, "since")?
            .map(|v| parse_time("since", v))
            .transpose()?;
        f.until_ms = value(p, "until")?
            .map(|v| parse_time("until", v))
            .transpose()?;
        if let (Some(s), Some(u)) = (f.since_ms, f.until_ms) {
            if s >= u {
                return Err(Error::bad("since", "must be earlier than until"));
            }
        }
        Ok(f)
    }

    /// A short digest of the filter, bound into cursors so a cursor only continues the
    /// listing it came from.
    pub fn fingerprint(&self, workspace_id: &str) -> [u8; 8] {
        let digest = Sha256::digest(format!("{workspace_id}\n{self:?}").as_bytes());
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest[..8]);
        out
    }
}

/// A present, non-empty value, at most [`MAX_VALUE_LEN`] bytes.
fn value<'a>(p: &'a Params, name: &str) -> Result<Option<&'a str>> {
    match p.get(name).filter(|v| !v.is_empty()) {
        Some(v) if v.len() > MAX_VALUE_LEN => Err(Error::bad(
            name,
            format!("longer than {MAX_VALUE_LEN} bytes"),
        )),
        Some(v) if v.chars().any(|c| c == '\0') => {
            Err(Error::bad(name, "contains a NUL character"))
        }
        other => Ok(other),
    }
}

/// RFC 3339 or integer epoch milliseconds, 1900..2300.
pub(crate) fn parse_time(name: &str, v: &str) -> Result<i64> {
    let ms = if let Ok(ms) = v.parse::<i64>() {
        ms
    } else {
        DateTime::parse_from_rfc3339(v)
            .map_err(|_| {
                Error::bad(
                    name,
                    format!(
                        "{} is neither RFC 3339 (2026-01-31T12:00:00Z) nor epoch milliseconds",
                        shown(v)
                    ),
                )
            })?
            .with_timezone(&Utc)
            .timestamp_millis()
    };
    if !(MIN_MS..MAX_MS).contains(&ms) {
        return Err(Error::bad(name, "must be between 1900 and 2300"));
    }
    Ok(ms)
}

/// RFC 3339 text of epoch milliseconds (for messages and output).
pub fn rfc3339_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// A value quoted for an error message, cut to 64 characters.
/// A value as an error message quotes it (at most 64 characters).
pub(crate) fn shown(v: &str) -> String {
    let cut: String = v.chars().take(64).collect();
    if cut.len() < v.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Filter> {
        Filter::from_params(&Params::parse(Some(q))?)
    }

    #[test]
    fn parses_every_filter() {
        let f = parse(
            "event=key.create,api.*&actor_type=root_key&actor_id=u1&target_type=key&target_id=k1\
             &bucket=b&since=2026-01-01T00:00:00Z&until=1767312000000&correlation_id=c\
             &outcome=failure&q=Hello",
        )
        .unwrap();
        assert_eq!(f.events, vec!["key.create"]);
        assert_eq!(f.resources, vec!["api"]);
        assert_eq!(f.actor_type, Some(ActorType::RootKey));
        assert_eq!(f.since_ms, Some(1_767_225_600_000));
        assert_eq!(f.until_ms, Some(1_767_312_000_000));
        assert_eq!(f.outcome, Some(OutcomeStatus::Failure));
        assert_eq!(f.text.as_deref(), Some("Hello"));
    }

    #[test]
    fn errors_name_the_parameter() {
        for (q, param) in [
            ("event=key.create'--", "event"),
            ("event=*", "event"),
            ("actor_type=admin", "actor_type"),
            ("outcome=ok", "outcome"),
            ("since=yesterday", "since"),
            ("until=99999999999999999999", "until"),
            (
                "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
                "since",
            ),
        ] {
            let e = parse(q).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{param}:")), "{q}: {e}");
        }
        let huge = format!("actor_id={}", "a".repeat(MAX_VALUE_LEN + 1));
        assert!(parse(&huge)
            .unwrap_err()
            .to_string()
            .starts_with("actor_id:"));
        for l in ["0", "-1", "1001", "x", "1e3"] {
            let p = Params::parse(Some(&format!("limit={l}"))).unwrap();
            assert!(limit_from_params(&p).is_err(), "{l}");
        }
    }

    #[test]
    fn filter_params_are_the_documented_ones() {
        let documented: Vec<String> = FilterParams::into_params(|| None)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(documented, FILTER_PARAMS);
        // Each is parsed: a malformed value is an error naming it (so none is accepted and
        // ignored).
        for name in FILTER_PARAMS {
            let q = format!("{name}={}", "%00");
            let e = parse(&q).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{name}:")), "{q}: {e}");
        }
    }

    #[test]
    fn fingerprint_depends_on_filter_and_workspace() {
        let a = parse("event=key.create").unwrap();
        let b = parse("event=key.delete").unwrap();
        assert_ne!(a.fingerprint("w"), b.fingerprint("w"));
        assert_ne!(a.fingerprint("w"), a.fingerprint("v"));
        assert_eq!(a.fingerprint("w"), a.clone().fingerprint("w"));
    }
}

/// Filter parameters a stream refuses: the time window and the page (a stream delivers every
/// event in the order it was stored, from its start on).
pub const STREAM_REFUSED_PARAMS: &[&str] = &["since", "until", "cursor", "limit", "order"];

impl Filter {
    /// A stream's stored filter (`name -> value`), parsed exactly like the list endpoint's
    /// parameters ([`Filter::from_params`]; errors name the parameter). The time window and
    /// page parameters ([`STREAM_REFUSED_PARAMS`]) and unknown names are refused.
    pub fn from_pairs(pairs: &std::collections::BTreeMap<String, String>) -> Result<Self> {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let mut query = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            if STREAM_REFUSED_PARAMS.contains(&name.as_str()) {
                return Err(Error::bad(
                    name,
                    "not a stream filter (a stream delivers every event in the order stored, from its start)",
                ));
            }
            if !FILTER_PARAMS.contains(&name.as_str()) {
                let accepted: Vec<&str> = FILTER_PARAMS
                    .iter()
                    .copied()
                    .filter(|p| !STREAM_REFUSED_PARAMS.contains(p))
                    .collect();
                return Err(Error::bad(
                    name.chars().take(64).collect::<String>(),
                    format!(
                        "unknown filter parameter (accepted: {})",
                        accepted.join(", ")
                    ),
                ));
            }
            query.push(format!(
                "{name}={}",
                utf8_percent_encode(value, NON_ALPHANUMERIC)
            ));
        }
        Filter::from_params(&Params::parse(Some(&query.join("&")))?)
    }
}

#[cfg(test)]
mod stream_filter_tests {
    use std::collections::BTreeMap;

    use super::*;

    fn pairs(p: &[(&str, &str)]) -> BTreeMap<String, String> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn stream_filters_parse_like_the_list_parameters() {
        let f = Filter::from_pairs(&pairs(&[
            ("event", "key.create,api.*"),
            ("actor_type", "user"),
            ("q", "a&b=c %"),
            ("bucket", ""),
        ]))
        .unwrap();
        assert_eq!(f.events, vec!["key.create"]);
        assert_eq!(f.resources, vec!["api"]);
        assert_eq!(f.actor_type, Some(ActorType::User));
        assert_eq!(
            f.text.as_deref(),
            Some("a&b=c %"),
            "values are taken verbatim"
        );
        assert_eq!(f.bucket, None, "an empty value counts as absent");
        assert_eq!(
            Filter::from_pairs(&BTreeMap::new()).unwrap(),
            Filter::default()
        );
    }

    #[test]
    fn stream_filters_refuse_windows_pages_and_unknown_names() {
        for name in STREAM_REFUSED_PARAMS {
            let e = Filter::from_pairs(&pairs(&[(name, "1")]))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("{name}:")), "{e}");
        }
        let e = Filter::from_pairs(&pairs(&[("actor", "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown filter parameter") && e.contains("actor_id"),
            "{e}"
        );
        let e = Filter::from_pairs(&pairs(&[("outcome", "ok")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("outcome:"), "{e}");
    }
}
