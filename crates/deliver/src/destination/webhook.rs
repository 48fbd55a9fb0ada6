//! The HTTPS webhook: one `POST` per batch, `content-type: application/json`, body
//! `{"stream_id","workspace_id","batch_id","events":[...]}` with the rendered events copied in
//! byte for byte, signed per the Standard Webhooks scheme (`webhook-id` = the batch id, so a
//! retried batch keeps its id; `webhook-timestamp`; `webhook-signature` with one `v1,`
//! signature per unexpired secret). 2xx acknowledges; anything else, or no answer, fails.

use std::time::Duration;

use auditlog_streams::{SigningSecret, Stream};
use futures::future::BoxFuture;

use super::{Batch, Destination, Failure, Limits};

/// Batch limits of a webhook.
pub const LIMITS: Limits = Limits {
    max_events: 500,
    max_bytes: 1024 * 1024,
    max_wait: Duration::ZERO,
};

/// A webhook destination.
pub struct Webhook {
    url: String,
    secrets: Vec<SigningSecret>,
    http: reqwest::Client,
}

impl Webhook {
    /// The webhook of `stream` (its URL and signing secrets).
    pub fn new(stream: &Stream, url: &str, http: &reqwest::Client) -> Self {
        Self {
            url: url.to_owned(),
            secrets: stream.secrets.clone(),
            http: http.clone(),
        }
    }
}

/// The request body: the envelope around the rendered events, which are not re-serialized.
pub fn body(batch: &Batch) -> Vec<u8> {
    let json = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""));
    let mut out = Vec::with_capacity(batch.bytes() + batch.events.len() + 256);
    out.extend_from_slice(b"{\"stream_id\":");
    out.extend_from_slice(json(&batch.stream_id).as_bytes());
    out.extend_from_slice(b",\"workspace_id\":");
    out.extend_from_slice(json(&batch.workspace_id).as_bytes());
    out.extend_from_slice(b",\"batch_id\":");
    out.extend_from_slice(json(&batch.batch_id).as_bytes());
    out.extend_from_slice(b",\"events\":[");
    for (i, e) in batch.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&e.json);
    }
    out.extend_from_slice(b"]}");
    out
}

impl Destination for Webhook {
    fn limits(&self) -> Limits {
        LIMITS
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let body = body(batch);
            let now_ms = chrono::Utc::now().timestamp_millis();
            let ts = now_ms.div_euclid(1000);
            let signature =
                auditlog_streams::signing::sign(&self.secrets, now_ms, &batch.batch_id, ts, &body);
            let resp = self
                .http
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("webhook-id", &batch.batch_id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await
                .map_err(|e| crate::http::transport("webhook", &e))?;
            crate::http::check("webhook", resp).await.map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rendered;

    #[test]
    fn the_body_wraps_the_rendered_events_byte_for_byte() {
        let ev = |json: &str| Rendered {
            event_id: uuid::Uuid::nil(),
            time_ms: 0,
            inserted_ms: 0,
            partition: 0,
            offset: 0,
            json: json.as_bytes().to_vec(),
        };
        let batch = Batch {
            stream_id: "str_\"x".into(),
            workspace_id: "ws".into(),
            batch_id: "str_x.0.0-0".into(),
            events: vec![ev(r#"{"a": 1.50}"#), ev(r#"{"b":"é"}"#)],
        };
        let b = String::from_utf8(body(&batch)).unwrap();
        assert_eq!(
            b,
            r#"{"stream_id":"str_\"x","workspace_id":"ws","batch_id":"str_x.0.0-0","events":[{"a": 1.50},{"b":"é"}]}"#
        );
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["events"].as_array().unwrap().len(), 2);
    }
}
