//! Splunk HTTP Event Collector: one `POST {url}/services/collector/event` per batch, the
//! events as concatenated JSON envelopes (HEC's batch form), `Authorization: Splunk <token>`.
//! `200 {"text":"Success","code":0}` acknowledges the batch; anything else is a [`Failure`]
//! (503 "Server is busy" and 429 with their `Retry-After`; 400 with HEC's code; 401/403 for
//! a missing or bad token). docs/destinations.md describes the request and the choices.
//!
//! Indexer acknowledgement (`/services/collector/ack`) is not polled: a 200 means the HEC
//! received and queued the events. Every request carries `X-Splunk-Request-Channel` (one
//! channel per destination instance), so a token with acknowledgement turned on is accepted
//! too instead of failing with code 10 "Data channel is missing".

use std::io::Write;
use std::time::Duration;

use auditlog_streams::model::{Destination as Spec, Stream};
use futures::future::BoxFuture;
use uuid::Uuid;

use super::{Batch, Destination, Failure, Limits};
use crate::http;

/// Most events in one request.
pub const MAX_EVENTS: usize = 500;
/// Most rendered bytes in one request (Splunk Cloud's recommended batch size; a Splunk
/// Enterprise HEC takes up to `max_content_length`, 800 MB by default).
pub const MAX_BYTES: usize = 1024 * 1024;
/// The `host` of every event.
pub const HOST: &str = "auditlog";
/// The `sourcetype` when the stream sets none.
pub const DEFAULT_SOURCETYPE: &str = "auditlog";
/// The collector's path under the configured URL.
pub const PATH: &str = "/services/collector/event";

/// How batches are cut: sent as soon as they are cut, no waiting for more events.
pub const LIMITS: Limits = Limits {
    max_events: MAX_EVENTS,
    max_bytes: MAX_BYTES,
    max_wait: Duration::ZERO,
};

/// A Splunk HEC destination.
#[derive(Debug)]
pub struct SplunkHec {
    http: reqwest::Client,
    /// The configuration, or why this stream has none (every delivery fails with it).
    config: Result<Config, Failure>,
    channel: Uuid,
}

#[derive(Debug)]
struct Config {
    endpoint: String,
    authorization: String,
    /// Everything of an envelope after `time`, up to the event: `,"host":...,"event":`.
    meta: Vec<u8>,
}

impl SplunkHec {
    /// The destination of `stream` (a `splunk_hec` stream; any other kind fails every delivery).
    pub fn new(stream: &Stream, http: reqwest::Client) -> Self {
        let config: Result<Config, String> = match &stream.spec.destination {
            Spec::SplunkHec {
                url,
                token,
                index,
                sourcetype,
            } => Ok(Config {
                endpoint: format!("{}{PATH}", url.trim_end_matches('/')),
                authorization: format!("Splunk {token}"),
                meta: meta(
                    &stream.spec.workspace_id,
                    sourcetype.as_deref(),
                    index.as_deref(),
                ),
            }),
            _ => Err(format!(
                "stream {} is not a Splunk HEC stream",
                stream.stream_id
            )),
        };
        let config = config.map_err(|reason| Failure {
            reason,
            retry_after: None,
        });
        Self {
            http,
            config,
            channel: Uuid::new_v4(),
        }
    }
}

/// The constant part of every envelope of a stream.
fn meta(workspace_id: &str, sourcetype: Option<&str>, index: Option<&str>) -> Vec<u8> {
    let string = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut m = format!(
        ",\"host\":{},\"source\":{},\"sourcetype\":{}",
        string(HOST),
        string(&format!("auditlog:{workspace_id}")),
        string(sourcetype.unwrap_or(DEFAULT_SOURCETYPE)),
    );
    if let Some(index) = index {
        m.push_str(&format!(",\"index\":{}", string(index)));
    }
    m.push_str(",\"event\":");
    m.into_bytes()
}

/// The request body: one envelope per event, concatenated (no separator needed; a newline
/// keeps it readable). `time` is the event time, epoch seconds with a millisecond fraction;
/// `event` is the rendered event, byte for byte.
fn body(meta: &[u8], batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.bytes() + batch.events.len() * (meta.len() + 32));
    for e in &batch.events {
        let (sign, ms) = if e.time_ms < 0 {
            ("-", e.time_ms.unsigned_abs())
        } else {
            ("", e.time_ms.unsigned_abs())
        };
        let _ = write!(out, "{{\"time\":{sign}{}.{:03}", ms / 1000, ms % 1000);
        out.extend_from_slice(meta);
        out.extend_from_slice(&e.json);
        out.extend_from_slice(b"}\n");
    }
    out
}

/// What HEC says in a 200 (`{"text":"Success","code":0}`).
#[derive(Debug, serde::Deserialize)]
struct Answer {
    #[serde(default)]
    text: String,
    code: Option<i64>,
}

impl Destination for SplunkHec {
    fn limits(&self) -> Limits {
        LIMITS
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let config = self.config.as_ref().map_err(Clone::clone)?;
            let resp = self
                .http
                .post(&config.endpoint)
                .header(reqwest::header::AUTHORIZATION, &config.authorization)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Splunk-Request-Channel", self.channel.to_string())
                .body(body(&config.meta, batch))
                .send()
                .await
                .map_err(|e| http::transport("Splunk HEC", &e))?;
            let resp = http::check("Splunk HEC", resp).await?;
            // A 200 whose body is HEC's answer with a non-zero code is not an acknowledgement.
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| http::transport("Splunk HEC", &e))?;
            match serde_json::from_slice::<Answer>(&bytes) {
                Ok(Answer {
                    code: Some(code),
                    text,
                }) if code != 0 => Err(Failure {
                    reason: format!("Splunk HEC answered code {code}: {text}"),
                    retry_after: None,
                }),
                _ => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::Rendered;

    fn batch() -> Batch {
        let ev = |n: i64, json: &str| Rendered {
            event_id: Uuid::from_u128(n as u128),
            time_ms: 1_764_619_200_000 + n * 1001,
            inserted_ms: 1_764_619_300_000,
            partition: 0,
            offset: n,
            json: json.as_bytes().to_vec(),
        };
        Batch {
            stream_id: "str_x".into(),
            workspace_id: "ws_1".into(),
            batch_id: Batch::id("str_x", 0, 0, 1),
            events: vec![
                ev(1, r#"{"event_id":"a","request":{"b":  1}}"#),
                ev(2, r#"{"event_id":"b"}"#),
            ],
        }
    }

    #[test]
    fn envelopes_carry_time_metadata_and_the_event_byte_for_byte() {
        let body = body(&meta("ws_1", None, Some("audit")), &batch());
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"time":1764619201.001,"host":"auditlog","source":"auditlog:ws_1","sourcetype":"auditlog","index":"audit","event":{"event_id":"a","request":{"b":  1}}}"#
        );
        // Every envelope is one JSON object of HEC's shape.
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["time"].is_f64() && v["event"].is_object(), "{v}");
        }
    }

    #[test]
    fn sourcetype_is_configurable_and_index_optional() {
        let m = String::from_utf8(meta("w\"s", Some("audit:json"), None)).unwrap();
        assert_eq!(
            m,
            r#","host":"auditlog","source":"auditlog:w\"s","sourcetype":"audit:json","event":"#
        );
    }

    #[test]
    fn times_before_1970_are_negative_seconds() {
        let mut b = batch();
        b.events.truncate(1);
        b.events[0].time_ms = -1;
        let text = String::from_utf8(body(&meta("w", None, None), &b)).unwrap();
        assert!(text.starts_with(r#"{"time":-0.001,"#), "{text}");
    }
}
