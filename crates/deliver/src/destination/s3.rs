//! An S3-compatible bucket: one gzipped NDJSON object per batch (a batch is a time window of
//! events: the worker waits up to `window_seconds` for a batch to fill), written with one
//! `PUT` to a SigV4 presigned URL (rusty-s3 signs; the request goes through the worker's
//! shared reqwest client). The key is a function of the batch alone,
//! `{prefix}{workspace_id}/{yyyy}/{mm}/{dd}/{HH}/{batch_id}.ndjson.gz` (UTC hour of the first
//! event's stored time), so a batch sent again after an unacknowledged attempt overwrites its
//! object rather than adding a second one. `Content-Type: application/gzip`, `Content-MD5`
//! (the bucket checks the body arrived whole); both are signed. Any 2xx acknowledges.

use std::io::Write;
use std::time::Duration;

use auditlog_streams::model::{Destination as Spec, Stream};
use base64::Engine as _;
use futures::future::BoxFuture;
use md5::{Digest as _, Md5};
use rusty_s3::{Bucket, Credentials, S3Action as _, UrlStyle};

use super::{compress, Batch, Destination, Failure, Limits};
use crate::http;

/// Most events in one object.
pub const MAX_EVENTS: usize = 10_000;
/// Most rendered (uncompressed) bytes in one object.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;
/// How long a presigned URL is valid: one attempt, signed just before it is sent.
pub const URL_EXPIRY: Duration = Duration::from_secs(300);
/// The objects' `Content-Type`.
pub const CONTENT_TYPE: &str = "application/gzip";

/// An S3 destination.
#[derive(Debug)]
pub struct S3 {
    http: reqwest::Client,
    /// The configuration, or why this stream has none (every delivery fails with it).
    config: Result<Config, Failure>,
}

#[derive(Debug)]
struct Config {
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    window: Duration,
}

impl S3 {
    /// The destination of `stream` (an `s3` stream; any other kind, or an endpoint or bucket
    /// name that does not make a URL, fails every delivery with the reason).
    pub fn new(stream: &Stream, http: reqwest::Client) -> Self {
        let config: Result<Config, String> = match &stream.spec.destination {
            Spec::S3 {
                endpoint,
                bucket,
                region,
                prefix,
                access_key_id,
                secret_access_key,
                window_seconds,
                path_style,
            } => bucket_of(endpoint, *path_style, bucket, region).map(|bucket| Config {
                bucket,
                credentials: Credentials::new(access_key_id, secret_access_key),
                prefix: prefix.clone(),
                window: Duration::from_secs(u64::from(*window_seconds)),
            }),
            _ => Err(format!("stream {} is not an S3 stream", stream.stream_id)),
        };
        let config = config.map_err(|reason| Failure {
            reason,
            retry_after: None,
        });
        Self { http, config }
    }
}

/// The bucket's addressing (`endpoint/bucket/key` or `bucket.endpoint/key`).
pub fn bucket_of(
    endpoint: &str,
    path_style: bool,
    bucket: &str,
    region: &str,
) -> Result<Bucket, String> {
    let url: reqwest::Url = endpoint
        .parse()
        .map_err(|e| format!("S3 endpoint {endpoint:?}: {e}"))?;
    let style = if path_style {
        UrlStyle::Path
    } else {
        UrlStyle::VirtualHost
    };
    Bucket::new(url, style, bucket.to_owned(), region.to_owned())
        .map_err(|e| format!("S3 bucket {bucket:?} at {endpoint:?}: {e}"))
}

/// The object key of `batch`: `{prefix}{workspace_id}/{yyyy}/{mm}/{dd}/{HH}/{batch_id}.ndjson.gz`,
/// dated by the first event's stored time (UTC).
pub fn object_key(prefix: &str, batch: &Batch) -> String {
    let first_ms = batch.events.first().map_or(0, |e| e.inserted_ms);
    let at = chrono::DateTime::from_timestamp_millis(first_ms).unwrap_or_default();
    format!(
        "{prefix}{}/{}/{}.ndjson.gz",
        batch.workspace_id,
        at.format("%Y/%m/%d/%H"),
        batch.batch_id
    )
}

/// The object body: the rendered events, one per line, gzipped.
pub fn object_body(batch: &Batch) -> std::io::Result<Vec<u8>> {
    let mut gz = compress::encoder(batch.bytes(), flate2::Compression::default());
    for e in &batch.events {
        gz.write_all(&e.json)?;
        gz.write_all(b"\n")?;
    }
    gz.finish()
}

/// The presigned `PUT` of `key`, its `Content-Type` and `Content-MD5` signed with it (the
/// request must carry exactly those values).
fn presigned_put(config: &Config, key: &str, md5: &str) -> reqwest::Url {
    let mut put = config.bucket.put_object(Some(&config.credentials), key);
    put.headers_mut().insert("content-type", CONTENT_TYPE);
    put.headers_mut().insert("content-md5", md5.to_owned());
    put.sign(URL_EXPIRY)
}

impl Destination for S3 {
    fn limits(&self) -> Limits {
        Limits {
            max_events: MAX_EVENTS,
            max_bytes: MAX_BYTES,
            max_wait: self.config.as_ref().map_or(Duration::ZERO, |c| c.window),
        }
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let config = self.config.as_ref().map_err(Clone::clone)?;
            let key = object_key(&config.prefix, batch);
            let owned = batch.clone();
            let body =
                compress::off_thread(&format!("S3 object {key}"), move || object_body(&owned))
                    .await?;
            let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
            let url = presigned_put(config, &key, &md5);
            let what = format!("S3 PUT {key}");
            let resp = self
                .http
                .put(url)
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .header("content-md5", md5)
                .body(body)
                .send()
                .await
                .map_err(|e| http::transport(&what, &e))?;
            http::check(&what, resp).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::Rendered;
    use std::io::Read;
    use uuid::Uuid;

    fn batch() -> Batch {
        Batch {
            stream_id: "str_x".into(),
            workspace_id: "ws_1".into(),
            batch_id: Batch::id("str_x", 2, 3, 40),
            events: (0..3)
                .map(|i| Rendered {
                    event_id: Uuid::from_u128(i),
                    time_ms: 0,
                    // 2026-12-01T21:59:59.999Z, then later
                    inserted_ms: 1_796_162_399_999 + i as i64,
                    partition: 3,
                    offset: 40 + i as i64,
                    json: format!(r#"{{"n":{i}}}"#).into_bytes(),
                })
                .collect(),
        }
    }

    #[test]
    fn key_is_dated_by_the_first_events_stored_hour_and_named_by_the_batch() {
        assert_eq!(
            object_key("audit/", &batch()),
            "audit/ws_1/2026/12/01/21/str_x.2.3-40.ndjson.gz"
        );
        assert_eq!(
            object_key("", &batch()),
            "ws_1/2026/12/01/21/str_x.2.3-40.ndjson.gz"
        );
    }

    #[test]
    fn body_is_gzipped_ndjson_one_event_a_line() {
        let gz = object_body(&batch()).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
    }

    #[test]
    fn the_put_is_presigned_with_its_content_headers() {
        let config = Config {
            bucket: bucket_of(
                "https://s3.eu-west-1.amazonaws.com",
                false,
                "logs",
                "eu-west-1",
            )
            .unwrap(),
            credentials: Credentials::new("AKID", "secret"),
            prefix: String::new(),
            window: Duration::from_secs(60),
        };
        let url = presigned_put(&config, "ws/2026/x.ndjson.gz", "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(url.host_str(), Some("logs.s3.eu-west-1.amazonaws.com"));
        assert_eq!(url.path(), "/ws/2026/x.ndjson.gz");
        let q: std::collections::HashMap<_, _> = url.query_pairs().collect();
        assert_eq!(q["X-Amz-SignedHeaders"], "content-md5;content-type;host");
        assert_eq!(q["X-Amz-Expires"], "300");
        assert!(q["X-Amz-Credential"].starts_with("AKID/"));
        assert!(q["X-Amz-Credential"].ends_with("/eu-west-1/s3/aws4_request"));
        assert_eq!(q["X-Amz-Signature"].len(), 64);
    }

    #[test]
    fn a_bad_endpoint_is_a_reason_not_a_panic() {
        let err = bucket_of("not a url", true, "b", "us-east-1").unwrap_err();
        assert!(err.contains("S3 endpoint"), "{err}");
        let b = bucket_of("http://127.0.0.1:9000", true, "b", "us-east-1").unwrap();
        assert_eq!(
            b.object_url("ws/x.gz").as_str(),
            "http://127.0.0.1:9000/b/ws/x.gz"
        );
    }
}
