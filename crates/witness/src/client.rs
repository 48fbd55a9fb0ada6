//! The witness client (C2SP tlog-witness `add-checkpoint`), used by the sequencer, and the
//! read of a witness's newest cosigned checkpoint, used by the verifier.

use std::time::Duration;

use auditlog_tlog::wire::{WITNESS_ADD_PATH, WITNESS_CHECKPOINT_PATH};
use auditlog_tlog::{cosignature, Hash, KeyKind, Note, Signature, Verifier};

use crate::request;
use crate::server::SIZE_CONTENT_TYPE;

/// What a witness answered to `add-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddResult {
    /// Cosigned: the witness's cosignature (verified against its key).
    Cosigned(Signature),
    /// 409: the witness's latest size for this origin is not the `old` size sent; retry with
    /// this size (and a proof from it).
    Conflict {
        /// The witness's latest tree size for the origin.
        witness_size: u64,
    },
}

/// A witness call that failed.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// Network, timeout.
    #[error("witness {url} unreachable: {source}")]
    Unreachable {
        /// The witness.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The witness refused (403 unknown log or bad signature, 422 bad proof, 400...).
    #[error("witness {url} refused the checkpoint ({status}): {body}")]
    Refused {
        /// The witness.
        url: String,
        /// HTTP status.
        status: u16,
        /// Its answer.
        body: String,
    },
    /// An answer that is not a valid cosignature by the configured key.
    #[error("witness {url} answered an invalid cosignature: {source}")]
    BadCosignature {
        /// The witness.
        url: String,
        /// Why.
        #[source]
        source: auditlog_tlog::Error,
    },
}

/// One witness.
#[derive(Debug, Clone)]
pub struct WitnessClient {
    url: String,
    verifier: Verifier,
    http: reqwest::Client,
}

/// Largest answer read from a witness (cosignature lines, a size, a checkpoint note).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

impl WitnessClient {
    /// A client of the witness at `url` whose cosigning key is `verifier_key`; `timeout`
    /// bounds each call. [`auditlog_tlog::Error::Signature`] for a key that is not a
    /// witness's cosignature key.
    pub fn new(url: &str, verifier_key: &str, timeout: Duration) -> auditlog_tlog::Result<Self> {
        let verifier = Verifier::parse(verifier_key.trim())?;
        if verifier.kind() != KeyKind::Cosignature {
            return Err(auditlog_tlog::Error::Signature(format!(
                "{} is a log's key, not a witness's cosignature key",
                verifier.name()
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| auditlog_tlog::Error::Malformed {
                what: "witness client",
                why: e.to_string(),
            })?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            verifier,
            http,
        })
    }
    /// The witness's key.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
    /// The witness's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// Send `signed_checkpoint` (a note signed by the log) with the consistency proof from
    /// `old_size` (the size the witness last cosigned for this origin; 0 for none).
    pub async fn add_checkpoint(
        &self,
        old_size: u64,
        proof: &[Hash],
        signed_checkpoint: &str,
    ) -> Result<AddResult, WitnessError> {
        let body = request::encode(old_size, proof, signed_checkpoint);
        let resp = self
            .http
            .post(format!("{}{WITNESS_ADD_PATH}", self.url))
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let size_body = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().starts_with(SIZE_CONTENT_TYPE));
        let answer = self.read_answer(resp).await?;
        match status.as_u16() {
            200 => self.cosignature(signed_checkpoint, &answer),
            409 if size_body => match answer.strip_suffix('\n').unwrap_or(&answer).parse() {
                Ok(witness_size) => Ok(AddResult::Conflict { witness_size }),
                Err(_) => Err(self.refused(409, &answer)),
            },
            s => Err(self.refused(s, &answer)),
        }
    }
    /// The newest checkpoint the witness cosigned for `origin` (a signed note with the log's
    /// signature and the witness's cosignature), `None` when it has none.
    pub async fn latest(&self, origin: &str) -> Result<Option<String>, WitnessError> {
        let resp = self
            .http
            .get(format!("{}{WITNESS_CHECKPOINT_PATH}", self.url))
            .query(&[("origin", origin)])
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let answer = self.read_answer(resp).await?;
        match status {
            200 => Ok(Some(answer)),
            404 => Ok(None),
            s => Err(self.refused(s, &answer)),
        }
    }

    /// The cosignature by our witness's key among the answer's lines, verified over the
    /// checkpoint's body (lines of other keys are ignored).
    fn cosignature(
        &self,
        signed_checkpoint: &str,
        answer: &str,
    ) -> Result<AddResult, WitnessError> {
        let bad = |source| WitnessError::BadCosignature {
            url: self.url.clone(),
            source,
        };
        let body = Note::parse(signed_checkpoint).map_err(bad)?.text;
        let mut last_err = auditlog_tlog::Error::Signature(format!(
            "no cosignature line of {} in the answer",
            self.verifier.name()
        ));
        for line in answer.lines().filter(|l| !l.is_empty()) {
            let sig = Signature::parse_line(line).map_err(bad)?;
            if sig.name != self.verifier.name() || sig.key_id != self.verifier.key_id() {
                continue;
            }
            match cosignature::verify(&self.verifier, &body, &sig) {
                Ok(_) => return Ok(AddResult::Cosigned(sig)),
                Err(e) => last_err = e,
            }
        }
        Err(bad(last_err))
    }

    /// The answer's text, at most [`MAX_ANSWER_BYTES`] (the rest is not read).
    async fn read_answer(&self, mut resp: reqwest::Response) -> Result<String, WitnessError> {
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unreachable(e))? {
            let room = MAX_ANSWER_BYTES - bytes.len();
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if bytes.len() == MAX_ANSWER_BYTES {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn unreachable(&self, source: reqwest::Error) -> WitnessError {
        WitnessError::Unreachable {
            url: self.url.clone(),
            source,
        }
    }

    fn refused(&self, status: u16, body: &str) -> WitnessError {
        WitnessError::Refused {
            url: self.url.clone(),
            status,
            body: body.trim_end().chars().take(1000).collect(),
        }
    }
}
