//! `auditlog verify --api`: a whole workspace against the API. The API's latest checkpoint is
//! checked against the witness's newest cosigned one and the one remembered from the last run
//! (consistency proofs from the API, so a rolled-back or rewritten log is caught), then the
//! verifiable export is streamed through the [`ExportVerifier`] with all of them as
//! references (the export's leaves recompute their roots independently of the API's proofs).
//! On success the newest verified checkpoint is remembered.

use std::path::{Path, PathBuf};
use std::time::Duration;

use auditlog_tlog::wire::{CheckpointBody, ConsistencyBody};
use auditlog_witness::WitnessClient;
use futures::StreamExt as _;
use serde::de::DeserializeOwned;

use crate::checkpoint::{Keys, SignedCheckpoint};
use crate::export::{ExportOptions, ExportVerifier, Reference};
use crate::proofs::{consistency_failure, decode_hashes};
use crate::report::{Failure, FailureKind, Report};
use crate::Error;

/// A witness to check the API's checkpoint against.
#[derive(Debug, Clone)]
pub struct WitnessArg {
    /// Its URL.
    pub url: String,
    /// Its cosignature verifier key.
    pub key: String,
}

/// What `verify --api` checks against.
#[derive(Debug, Clone)]
pub struct OnlineOptions {
    /// The API's base URL.
    pub api_url: String,
    /// The workspace token.
    pub token: String,
    /// Pinned log keys and the witness keys (the `witness` key included).
    pub keys: Keys,
    /// The witness, if one.
    pub witness: Option<WitnessArg>,
    /// Cosignatures needed on the export's checkpoint or the witness's (0 without a witness).
    pub min_witnesses: usize,
    /// Where the newest verified checkpoint is remembered between runs.
    pub remember: Option<PathBuf>,
    /// The verifier's clock, epoch ms.
    pub now_ms: i64,
    /// Failures listed before only counting.
    pub max_listed: usize,
    /// Connect and read timeout of each request.
    pub timeout: Duration,
}

/// The API, with the workspace token.
#[derive(Debug, Clone)]
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// Export lines longer than this are refused (events are at most a few MiB).
const MAX_LINE: usize = 64 << 20;

impl Api {
    async fn get(&self, path: &str) -> Result<reqwest::Response, Error> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|source| Error::Http {
                url: url.clone(),
                source,
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body = cut(resp.text().await.unwrap_or_default(), 500);
            return Err(Error::Status {
                url,
                status: status.as_u16(),
                body,
            });
        }
        Ok(resp)
    }

    async fn json<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let url = format!("{}{path}", self.base);
        self.get(path)
            .await?
            .json()
            .await
            .map_err(|source| Error::Http { url, source })
    }

    /// Stream the verifiable export through `v`, line by line.
    async fn export(&self, v: &mut ExportVerifier) -> Result<(), Error> {
        let path = "/v1/export?format=log";
        let url = format!("{}{path}", self.base);
        let mut body = self.get(path).await?.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|source| Error::Http {
                url: url.clone(),
                source,
            })?;
            buf.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
                v.line(&String::from_utf8_lossy(&buf[start..start + nl]));
                start += nl + 1;
            }
            buf.drain(..start);
            if buf.len() > MAX_LINE {
                return Err(Error::Input {
                    what: url,
                    why: format!("an export line longer than {MAX_LINE} bytes"),
                });
            }
        }
        if !buf.is_empty() {
            v.line(&String::from_utf8_lossy(&buf));
        }
        Ok(())
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(mut text: String, max: usize) -> String {
    let mut i = max.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    text.truncate(i);
    text
}

/// Verify the workspace of `opts.token` through the API.
pub async fn verify_online(opts: &OnlineOptions) -> Result<Report, Error> {
    let http = reqwest::Client::builder()
        .connect_timeout(opts.timeout)
        .read_timeout(opts.timeout)
        .build()
        .map_err(|source| Error::Http {
            url: opts.api_url.clone(),
            source,
        })?;
    let api = Api {
        base: opts.api_url.trim_end_matches('/').to_owned(),
        token: opts.token.clone(),
        http,
    };
    let mut pre = Report::new(opts.max_listed);
    let mut references = Vec::new();

    // The API's latest checkpoint.
    let body: CheckpointBody = api.json("/v1/log/checkpoint").await?;
    let latest = match SignedCheckpoint::verified(&body.note, &opts.keys, "the API's checkpoint") {
        Ok(cp) => Some(cp),
        Err(f) => {
            pre.fail(f);
            None
        }
    };
    let origin = latest
        .as_ref()
        .map_or(body.origin.clone(), |c| c.checkpoint.origin.clone());

    // Earlier checkpoints the API's must extend: the witness's, the remembered one.
    let mut earlier: Vec<(String, SignedCheckpoint)> = Vec::new();
    if let Some(w) = &opts.witness {
        let client =
            WitnessClient::new(&w.url, &w.key, opts.timeout).map_err(|e| Error::Input {
                what: format!("witness key {:?}", w.key),
                why: e.to_string(),
            })?;
        let what = format!("the witness {}'s checkpoint", w.url);
        match client.latest(&origin).await? {
            None => pre.fail(Failure::new(
                FailureKind::NotWitnessed,
                format!("the witness {} has no checkpoint of {origin}", w.url),
            )),
            Some(note) => match SignedCheckpoint::verified(&note, &opts.keys, &what) {
                Err(f) => pre.fail(f),
                Ok(cp) => {
                    if !cp
                        .witnessed_by(&opts.keys)
                        .iter()
                        .any(|n| n == client.verifier().name())
                    {
                        pre.fail(Failure::new(
                            FailureKind::NotWitnessed,
                            format!("{what} carries no valid cosignature by its key"),
                        ));
                    }
                    earlier.push((what, cp));
                }
            },
        }
    }
    if let Some(path) = &opts.remember {
        if let Some(note) = read_remembered(path)? {
            let what = format!("the checkpoint remembered in {}", path.display());
            match SignedCheckpoint::verified(&note, &opts.keys, &what) {
                Ok(cp) => earlier.push((what, cp)),
                Err(f) => pre.fail(f),
            }
        }
    }
    if let Some(latest) = &latest {
        for (what, cp) in &earlier {
            if let Some(f) = consistent(&api, cp, latest, what).await? {
                pre.fail(f);
            }
        }
    }
    references.extend(
        earlier
            .into_iter()
            .map(|(source, checkpoint)| Reference { source, checkpoint }),
    );
    if let Some(cp) = latest {
        references.push(Reference {
            source: "the API's latest checkpoint".to_owned(),
            checkpoint: cp,
        });
    }

    // The export, against all of them.
    let mut v = ExportVerifier::new(ExportOptions {
        keys: opts.keys.clone(),
        min_witnesses: opts.min_witnesses,
        references,
        now_ms: opts.now_ms,
        max_listed: opts.max_listed,
    });
    api.export(&mut v).await?;
    let newest = v.checkpoint().cloned();
    let mut report = pre;
    report.absorb(v.finish());

    if report.ok() {
        if let (Some(path), Some(cp)) = (&opts.remember, newest) {
            remember(path, &cp.note_text)?;
        }
    }
    Ok(report)
}

/// Whether the API's `latest` extends `old` (by the API's consistency proof).
async fn consistent(
    api: &Api,
    old: &SignedCheckpoint,
    latest: &SignedCheckpoint,
    what: &str,
) -> Result<Option<Failure>, Error> {
    let (o, n) = (&old.checkpoint, &latest.checkpoint);
    let mut hashes = Vec::new();
    if o.origin == n.origin && o.size < n.size && o.size > 0 {
        let body: ConsistencyBody = api
            .json(&format!(
                "/v1/log/proof/consistency?first={}&second={}",
                o.size, n.size
            ))
            .await?;
        match decode_hashes(&body.hashes) {
            Some(h) => hashes = h,
            None => {
                return Ok(Some(Failure::new(
                    FailureKind::Malformed,
                    "the API's consistency proof has a hash that is not base64 of 32 bytes",
                )))
            }
        }
    }
    Ok(consistency_failure(o, n, &hashes, what))
}

/// The remembered note, `None` before the first run.
fn read_remembered(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Write the note next to `path` and rename it over (a crash leaves the old one).
pub fn remember(path: &Path, note: &str) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, note).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
