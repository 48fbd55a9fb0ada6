//! Checks of a stream's configuration before it is stored. Every error names the field as the
//! admin API's body names it (`destination.url`, `destination.window_seconds`).
//!
//! The filter is the one part not checked here: it is parsed by the query crate's
//! `Filter::from_pairs` (exactly like the list endpoint's parameters), which the admin API and
//! the CLI call before [`crate::StreamStore::create`] (this crate cannot depend on the query
//! crate, which depends on it). Here only its size is bounded.

use auditlog_store::FeedStart;
use chrono::{DateTime, Utc};

use crate::model::{Destination, StreamSpec};
use crate::{Error, Result};

/// Longest stream name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Longest credential, index, tag list or S3 field, in bytes.
pub const MAX_FIELD_LEN: usize = 1024;
/// Most filter parameters.
pub const MAX_FILTER_ENTRIES: usize = 32;
/// Shortest S3 object window, seconds.
pub const MIN_WINDOW_S: u32 = 10;
/// Longest S3 object window, seconds.
pub const MAX_WINDOW_S: u32 = 3600;

/// Hosts that may be reached over plain `http://` (tests and local receivers).
const LOOPBACK: &[&str] = &["127.0.0.1", "localhost", "[::1]", "::1"];

/// Checks everything of `spec` but the filter's parameters (see the module docs).
pub fn check_spec(spec: &StreamSpec) -> Result<()> {
    auditlog_event::validate::check_id("workspace_id", &spec.workspace_id)
        .map_err(|e| Error::invalid(e.field, e.rule.to_string()))?;
    text("name", &spec.name, MAX_NAME_LEN, false)?;
    check_destination(&spec.destination)?;
    if spec.filter.len() > MAX_FILTER_ENTRIES {
        return Err(Error::invalid(
            "filter",
            format!("at most {MAX_FILTER_ENTRIES} parameters"),
        ));
    }
    Ok(())
}

/// Checks a destination: URLs, credentials, the S3 window.
pub fn check_destination(d: &Destination) -> Result<()> {
    match d {
        Destination::Webhook { url } => check_url("destination.url", url),
        Destination::SplunkHec {
            url,
            token,
            index,
            sourcetype,
        } => {
            check_url("destination.url", url)?;
            text("destination.token", token, MAX_FIELD_LEN, true)?;
            optional("destination.index", index.as_deref())?;
            optional("destination.sourcetype", sourcetype.as_deref())
        }
        Destination::Datadog {
            url,
            api_key,
            service,
            tags,
        } => {
            check_url("destination.url", url)?;
            text("destination.api_key", api_key, MAX_FIELD_LEN, true)?;
            optional("destination.service", service.as_deref())?;
            optional("destination.tags", tags.as_deref())
        }
        Destination::S3 {
            endpoint,
            bucket,
            region,
            prefix,
            access_key_id,
            secret_access_key,
            window_seconds,
            path_style: _,
        } => {
            check_url("destination.endpoint", endpoint)?;
            check_bucket(bucket)?;
            text("destination.region", region, 64, true)?;
            if region.chars().any(char::is_whitespace) {
                return Err(Error::invalid(
                    "destination.region",
                    "must not contain spaces",
                ));
            }
            text("destination.prefix", prefix, MAX_FIELD_LEN, false)?;
            if prefix.starts_with('/') {
                return Err(Error::invalid(
                    "destination.prefix",
                    "must not start with / (keys are relative to the bucket)",
                ));
            }
            text(
                "destination.access_key_id",
                access_key_id,
                MAX_FIELD_LEN,
                true,
            )?;
            text(
                "destination.secret_access_key",
                secret_access_key,
                MAX_FIELD_LEN,
                true,
            )?;
            if !(MIN_WINDOW_S..=MAX_WINDOW_S).contains(window_seconds) {
                return Err(Error::invalid(
                    "destination.window_seconds",
                    format!("{window_seconds} seconds is not in {MIN_WINDOW_S}..={MAX_WINDOW_S}"),
                ));
            }
            Ok(())
        }
    }
}

/// A destination URL: absolute, `https://`, or `http://` on a loopback host
/// (`127.0.0.1`, `localhost`, `::1`); no user or password in it.
pub fn check_url(field: &str, url: &str) -> Result<()> {
    if url.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if url.len() > MAX_URL_LEN {
        return Err(Error::invalid(
            field,
            format!("longer than {MAX_URL_LEN} bytes"),
        ));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|e| Error::invalid(field, format!("{url:?} is not a URL: {e}")))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(Error::invalid(
            field,
            format!("{url:?} is not an absolute URL like https://host/path"),
        ));
    };
    if authority.as_str().contains('@') {
        return Err(Error::invalid(
            field,
            "must not carry a user or password (credentials go in their own fields)",
        ));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(Error::invalid(field, format!("{url:?} has no host")));
    }
    match scheme {
        "https" => Ok(()),
        "http" if LOOPBACK.contains(&host) => Ok(()),
        "http" => Err(Error::invalid(
            field,
            format!("must be https:// (http:// only on 127.0.0.1, localhost or ::1, not {host})"),
        )),
        other => Err(Error::invalid(
            field,
            format!("scheme {other}:// is not https://"),
        )),
    }
}

/// An S3 bucket name: 3 to 63 lowercase letters, digits, `.` and `-`.
fn check_bucket(bucket: &str) -> Result<()> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "destination.bucket",
            format!("{bucket:?} is not 3 to 63 lowercase letters, digits, . and -"),
        ))
    }
}

/// Text of at most `max` bytes without control characters; `required`: not empty.
fn text(field: &str, v: &str, max: usize, required: bool) -> Result<()> {
    if required && v.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if v.len() > max {
        return Err(Error::invalid(field, format!("longer than {max} bytes")));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// An optional text: absent, or not empty.
fn optional(field: &str, v: Option<&str>) -> Result<()> {
    match v {
        Some(v) => text(field, v, MAX_FIELD_LEN, true),
        None => Ok(()),
    }
}

/// Parses where a stream starts or replays from: `beginning`, `now`, or an RFC 3339 time
/// (events stored at or after it). `field` names the input in errors.
pub fn parse_start(field: &str, v: &str) -> Result<FeedStart> {
    match v.trim() {
        "beginning" => Ok(FeedStart::Beginning),
        "now" | "" => Ok(FeedStart::Now),
        t => DateTime::parse_from_rfc3339(t)
            .map(|at| FeedStart::Time(at.with_timezone(&Utc).timestamp_millis()))
            .map_err(|_| {
                Error::invalid(
                    field,
                    format!(
                        "{t:?} is not beginning, now or an RFC 3339 time (2026-01-31T12:00:00Z)"
                    ),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str) -> Destination {
        Destination::Webhook { url: url.into() }
    }

    fn field_of(r: Result<()>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn urls_must_be_https_except_on_loopback() {
        for ok in [
            "https://hooks.example.com/audit",
            "https://10.0.0.1:8443/x?y=1",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://[::1]:8080/",
        ] {
            check_destination(&webhook(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "http://hooks.example.com/audit",
            "ftp://127.0.0.1/x",
            "hooks.example.com/audit",
            "/relative",
            "https://user:pw@example.com/",
            "https://exa mple.com/",
            "http://127.0.0.2/",
        ] {
            assert_eq!(
                field_of(check_destination(&webhook(bad))),
                "destination.url",
                "{bad}"
            );
        }
    }

    fn s3(window_seconds: u32, bucket: &str) -> Destination {
        Destination::S3 {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: bucket.into(),
            region: "us-east-1".into(),
            prefix: "audit/".into(),
            access_key_id: "AKIA".into(),
            secret_access_key: "secret".into(),
            window_seconds,
            path_style: true,
        }
    }

    #[test]
    fn s3_fields_and_window_are_checked() {
        check_destination(&s3(60, "audit-bucket")).unwrap();
        check_destination(&s3(10, "a.b")).unwrap();
        check_destination(&s3(3600, "a.b")).unwrap();
        assert_eq!(
            field_of(check_destination(&s3(9, "a.b"))),
            "destination.window_seconds"
        );
        assert_eq!(
            field_of(check_destination(&s3(3601, "a.b"))),
            "destination.window_seconds"
        );
        assert_eq!(
            field_of(check_destination(&s3(60, "Bad_Bucket"))),
            "destination.bucket"
        );
        let mut d = s3(60, "abc");
        if let Destination::S3 {
            secret_access_key, ..
        } = &mut d
        {
            secret_access_key.clear();
        }
        assert_eq!(
            field_of(check_destination(&d)),
            "destination.secret_access_key"
        );
    }

    #[test]
    fn credentials_are_required_and_names_bounded() {
        let splunk = Destination::SplunkHec {
            url: "https://splunk:8088".into(),
            token: " ".into(),
            index: None,
            sourcetype: None,
        };
        assert_eq!(field_of(check_destination(&splunk)), "destination.token");
        let dd = Destination::Datadog {
            url: "https://http-intake.logs.datadoghq.com".into(),
            api_key: "k".into(),
            service: Some(String::new()),
            tags: None,
        };
        assert_eq!(field_of(check_destination(&dd)), "destination.service");
        let spec = StreamSpec {
            workspace_id: "ws 1".into(),
            name: String::new(),
            destination: webhook("https://x.example"),
            format: Default::default(),
            filter: Default::default(),
        };
        assert_eq!(field_of(check_spec(&spec)), "workspace_id");
        let long = StreamSpec {
            workspace_id: "ws_1".into(),
            name: "n".repeat(MAX_NAME_LEN + 1),
            ..spec
        };
        assert_eq!(field_of(check_spec(&long)), "name");
    }

    #[test]
    fn starts_parse() {
        assert_eq!(
            parse_start("start", "beginning").unwrap(),
            FeedStart::Beginning
        );
        assert_eq!(parse_start("start", "now").unwrap(), FeedStart::Now);
        assert_eq!(
            parse_start("start", "2026-01-01T00:00:00.5Z").unwrap(),
            FeedStart::Time(1_767_225_600_500)
        );
        let e = parse_start("from", "yesterday").unwrap_err().to_string();
        assert!(e.starts_with("from: "), "{e}");
    }
}
