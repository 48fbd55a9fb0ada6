//! Datadog logs intake (v2): `POST {url}/api/v2/logs` with `DD-API-KEY`, the body a JSON
//! array of log objects, one per event: `ddsource: "auditlog"`, `service`, `hostname`,
//! `ddtags`, `message` (the event's description) and the rendered event, byte for byte, under
//! the `auditlog` attribute. No `timestamp`: the intake drops logs stamped more than 18 hours in
//! the past, which would lose late events and replays; Datadog stamps each log on arrival and
//! the event's own time is `@auditlog.time` (format `json`). Bodies are gzipped
//! (`Content-Encoding: gzip`, as the intake recommends). `202 Accepted` acknowledges;
//! anything else is a [`Failure`] (429 and 5xx with their `Retry-After`; 400, 403 bad key,
//! 413). The intake takes at most 1,000 logs and 5 MB (uncompressed) per request: a batch
//! whose envelopes push it past 5 MB goes out as several requests, in order, all of which
//! must be accepted. docs/destinations.md describes the request.

use std::borrow::Cow;
use std::time::Duration;

use auditlog_streams::model::{Destination as Spec, Stream};
use futures::future::BoxFuture;

use super::{compress, Batch, Destination, Failure, Limits, Rendered};
use crate::http;

/// Most logs in one request (the intake's limit).
pub const MAX_EVENTS: usize = 1000;
/// Most rendered bytes in one batch: under the intake's 5 MB, leaving room for envelopes.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most bytes of one request body (the intake's limit, uncompressed).
pub const MAX_PAYLOAD: usize = 5_000_000;
/// `ddsource` and `hostname` of every log; `service` unless the stream sets one.
pub const SOURCE: &str = "auditlog";
/// The intake's path under the configured URL.
pub const PATH: &str = "/api/v2/logs";

/// How batches are cut: sent as soon as they are cut, no waiting for more events.
pub const LIMITS: Limits = Limits {
    max_events: MAX_EVENTS,
    max_bytes: MAX_BYTES,
    max_wait: Duration::ZERO,
};

/// A Datadog logs destination.
#[derive(Debug)]
pub struct Datadog {
    http: reqwest::Client,
    /// The configuration, or why this stream has none (every delivery fails with it).
    config: Result<Config, Failure>,
}

#[derive(Debug)]
struct Config {
    endpoint: String,
    api_key: String,
    /// The constant fields of every log: `"ddsource":...,"service":...,"hostname":...,"ddtags":...`.
    meta: Vec<u8>,
}

impl Datadog {
    /// The destination of `stream` (a `datadog` stream; any other kind fails every delivery).
    pub fn new(stream: &Stream, http: reqwest::Client) -> Self {
        let config: Result<Config, String> = match &stream.spec.destination {
            Spec::Datadog {
                url,
                api_key,
                service,
                tags,
            } => Ok(Config {
                endpoint: format!("{}{PATH}", url.trim_end_matches('/')),
                api_key: api_key.clone(),
                meta: meta(service.as_deref(), tags.as_deref()),
            }),
            _ => Err(format!(
                "stream {} is not a Datadog stream",
                stream.stream_id
            )),
        };
        let config = config.map_err(|reason| Failure {
            reason,
            retry_after: None,
        });
        Self { http, config }
    }
}

fn meta(service: Option<&str>, tags: Option<&str>) -> Vec<u8> {
    let string = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut m = format!(
        "\"ddsource\":{},\"service\":{},\"hostname\":{}",
        string(SOURCE),
        string(service.unwrap_or(SOURCE)),
        string(SOURCE),
    );
    if let Some(tags) = tags.filter(|t| !t.is_empty()) {
        m.push_str(&format!(",\"ddtags\":{}", string(tags)));
    }
    m.into_bytes()
}

/// The summary line of a rendered event: `description` (our JSON) or `message` (OCSF, ECS).
fn message(json: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Summary<'a> {
        #[serde(borrow, default)]
        description: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        message: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<Summary>(json)
        .ok()
        .and_then(|s| s.description.or(s.message))
        .map(Cow::into_owned)
        .unwrap_or_default()
}

/// One log object.
fn log(meta: &[u8], e: &Rendered, out: &mut Vec<u8>) {
    out.push(b'{');
    out.extend_from_slice(meta);
    out.extend_from_slice(b",\"message\":");
    let _ = serde_json::to_writer(&mut *out, &message(&e.json));
    out.extend_from_slice(b",\"auditlog\":");
    out.extend_from_slice(&e.json);
    out.push(b'}');
}

/// The request bodies of a batch: JSON arrays of at most [`MAX_EVENTS`] logs and (but for a
/// single log bigger than that) [`MAX_PAYLOAD`] bytes, in order.
fn bodies(meta: &[u8], batch: &Batch) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut cur = vec![b'['];
    let mut n = 0;
    let mut one = Vec::new();
    for e in &batch.events {
        one.clear();
        log(meta, e, &mut one);
        if n > 0 && (n == MAX_EVENTS || cur.len() + 1 + one.len() + 1 > MAX_PAYLOAD) {
            cur.push(b']');
            parts.push(std::mem::replace(&mut cur, vec![b'[']));
            n = 0;
        }
        if n > 0 {
            cur.push(b',');
        }
        cur.extend_from_slice(&one);
        n += 1;
    }
    cur.push(b']');
    if n > 0 {
        parts.push(cur);
    }
    parts
}

impl Destination for Datadog {
    fn limits(&self) -> Limits {
        LIMITS
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let config = self.config.as_ref().map_err(Clone::clone)?;
            let (meta, owned) = (config.meta.clone(), batch.clone());
            let parts = compress::off_thread("Datadog", move || {
                compress::gzip_each(&bodies(&meta, &owned), flate2::Compression::fast())
            })
            .await?;
            for body in parts {
                let resp = self
                    .http
                    .post(&config.endpoint)
                    .header("DD-API-KEY", &config.api_key)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::CONTENT_ENCODING, "gzip")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| http::transport("Datadog", &e))?;
                http::check("Datadog", resp).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn batch(n: usize, json: &str) -> Batch {
        Batch {
            stream_id: "str_x".into(),
            workspace_id: "ws_1".into(),
            batch_id: Batch::id("str_x", 0, 0, 0),
            events: (0..n)
                .map(|i| Rendered {
                    event_id: Uuid::from_u128(i as u128),
                    time_ms: 1_764_619_200_000 + i as i64,
                    inserted_ms: 1_764_619_300_000,
                    partition: 0,
                    offset: i as i64,
                    json: json.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn logs_carry_the_reserved_attributes_and_the_event_byte_for_byte() {
        let ev = r#"{"event_id":"a","description":"Key \"k\" created","request":{"x":  1}}"#;
        let parts = bodies(&meta(Some("billing"), Some("env:prod")), &batch(2, ev));
        assert_eq!(parts.len(), 1);
        let text = String::from_utf8(parts[0].clone()).unwrap();
        assert!(text.starts_with(
            r#"[{"ddsource":"auditlog","service":"billing","hostname":"auditlog","ddtags":"env:prod","message":"Key \"k\" created","auditlog":{"event_id":"a","description":"Key \"k\" created","request":{"x":  1}}},"#
        ), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
    }

    #[test]
    fn message_falls_back_to_the_message_field_then_empty() {
        assert_eq!(message(br#"{"message":"m","x":[1,2]}"#), "m");
        assert_eq!(message(br#"{"x":1}"#), "");
        assert_eq!(message(b"not json"), "");
        let m = String::from_utf8(meta(None, Some(""))).unwrap();
        assert_eq!(
            m,
            r#""ddsource":"auditlog","service":"auditlog","hostname":"auditlog""#
        );
    }

    #[test]
    fn bodies_split_at_the_intakes_entry_and_size_limits() {
        let parts = bodies(&meta(None, None), &batch(MAX_EVENTS + 1, r#"{"a":1}"#));
        let lens: Vec<usize> = parts
            .iter()
            .map(|p| {
                serde_json::from_slice::<Vec<serde_json::Value>>(p)
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(lens, vec![MAX_EVENTS, 1]);

        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(900_000));
        let parts = bodies(&meta(None, None), &batch(12, &big));
        assert!(parts.len() >= 3, "{}", parts.len());
        let mut total = 0;
        for p in &parts {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            total += serde_json::from_slice::<Vec<serde_json::Value>>(p)
                .unwrap()
                .len();
        }
        assert_eq!(total, 12);
    }
}
