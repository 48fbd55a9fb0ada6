//! Query load in parallel with ingestion: several clients, each with a workspace token, looping
//! over list, detail (of an id the list returned) and NDJSON export, with request timeouts.
//! Every answer is recorded; [`judge`] decides afterwards which statuses were acceptable.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::flag::CancelFlag;

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the scenario started.
    pub at: f64,
    pub op: &'static str,
    /// `None` when the request failed without a status (timeout, connection error).
    pub status: Option<u16>,
    pub retry_after: bool,
    /// A problem with an otherwise successful answer (wrong workspace, unparsable body).
    pub problem: Option<String>,
    pub millis: u64,
}

/// A running query load.
#[derive(Debug)]
pub struct Queries {
    stop: CancelFlag,
    tasks: JoinSet<()>,
    pub samples: Arc<Mutex<Vec<Sample>>>,
}

impl Queries {
    /// One client task per `(workspace, token)`.
    pub fn start(base: &str, tokens: Vec<(String, String)>, seed: u64, t0: Instant) -> Self {
        let stop = CancelFlag::default();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        for (i, (ws, token)) in tokens.into_iter().enumerate() {
            let c = Client {
                base: base.to_string(),
                workspace: ws,
                token,
                t0,
                samples: samples.clone(),
            };
            tasks.spawn(c.run(StdRng::seed_from_u64(seed ^ (i as u64 + 1)), stop.clone()));
        }
        Self {
            stop,
            tasks,
            samples,
        }
    }

    pub async fn stop(mut self) -> Vec<Sample> {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        let s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        s.clone()
    }
}

struct Client {
    base: String,
    workspace: String,
    token: String,
    t0: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl Client {
    async fn run(self, mut rng: StdRng, stop: CancelFlag) {
        let Ok(http) = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .build()
        else {
            return;
        };
        let mut last_ids: Vec<String> = Vec::new();
        while !stop.is_cancelled() {
            let roll: f64 = rng.random();
            if roll < 0.55 || last_ids.is_empty() {
                if let Some(ids) = self.list(&http).await {
                    last_ids = ids;
                }
            } else if roll < 0.85 {
                let id = last_ids[rng.random_range(0..last_ids.len())].clone();
                self.detail(&http, &id).await;
            } else {
                self.export(&http).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(50..250))).await;
        }
    }

    fn record(
        &self,
        op: &'static str,
        start: Instant,
        status: Option<u16>,
        retry_after: bool,
        problem: Option<String>,
    ) {
        let s = Sample {
            at: start.duration_since(self.t0).as_secs_f64(),
            op,
            status,
            retry_after,
            problem,
            millis: start.elapsed().as_millis() as u64,
        };
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(s);
    }

    async fn get(&self, http: &reqwest::Client, path: &str) -> Result<reqwest::Response, String> {
        http.get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| format!("{e}"))
    }

    async fn list(&self, http: &reqwest::Client) -> Option<Vec<String>> {
        let start = Instant::now();
        let resp = match self.get(http, "/v1/events?limit=50").await {
            Ok(r) => r,
            Err(e) => {
                self.record("list", start, None, false, Some(e));
                return None;
            }
        };
        let status = resp.status().as_u16();
        let retry = resp.headers().contains_key("retry-after");
        let body = resp.bytes().await;
        let mut problem = None;
        let mut ids = None;
        if status == 200 {
            match body
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                Some(v) => {
                    let data = v["data"].as_array().cloned().unwrap_or_default();
                    if data
                        .iter()
                        .any(|e| e["workspace_id"] != self.workspace.as_str())
                    {
                        problem = Some(format!(
                            "list for {} returned another workspace's event",
                            self.workspace
                        ));
                    }
                    ids = Some(
                        data.iter()
                            .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
                            .collect(),
                    );
                }
                None => problem = Some("list: body is not JSON".into()),
            }
        }
        self.record("list", start, Some(status), retry, problem);
        ids
    }

    async fn detail(&self, http: &reqwest::Client, id: &str) {
        let start = Instant::now();
        match self.get(http, &format!("/v1/events/{id}")).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry = resp.headers().contains_key("retry-after");
                let mut problem = None;
                if status == 200 {
                    let v = resp.json::<Value>().await.unwrap_or_default();
                    if v["event_id"] != id || v["workspace_id"] != self.workspace.as_str() {
                        problem = Some(format!("detail {id}: wrong event returned"));
                    }
                }
                self.record("detail", start, Some(status), retry, problem);
            }
            Err(e) => self.record("detail", start, None, false, Some(e)),
        }
    }

    async fn export(&self, http: &reqwest::Client) {
        let start = Instant::now();
        let since = chrono::Utc::now().timestamp_millis() - 20_000;
        let resp = match self
            .get(http, &format!("/v1/export?format=ndjson&since={since}"))
            .await
        {
            Ok(r) => r,
            Err(e) => return self.record("export", start, None, false, Some(e)),
        };
        let status = resp.status().as_u16();
        let retry = resp.headers().contains_key("retry-after");
        let mut problem = None;
        if status == 200 {
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::new();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => buf.extend_from_slice(&c),
                    Err(e) => {
                        problem = Some(format!("export stream broke: {e}"));
                        break;
                    }
                }
            }
            if problem.is_none() {
                for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let ok = serde_json::from_slice::<Value>(line)
                        .map(|v| v["workspace_id"] == self.workspace.as_str())
                        .unwrap_or(false);
                    if !ok {
                        problem = Some("export: a line is not an event of this workspace".into());
                        break;
                    }
                }
            }
        }
        self.record("export", start, Some(status), retry, problem);
    }
}

/// The verdict on a scenario's API answers.
#[derive(Debug, Default)]
pub struct ApiVerdict {
    pub requests: u64,
    pub ok: u64,
    /// 503 with Retry-After while ClickHouse was down.
    pub unavailable_ok: u64,
    pub bad: u64,
    pub first_bad: Vec<String>,
    pub p99_ms: u64,
}

/// Judges the samples: 200 always expected, except 503 with `Retry-After` during an outage
/// window (start, end in scenario seconds; a grace period after the end is allowed).
pub fn judge(samples: &[Sample], outages: &[(f64, f64)], grace: f64) -> ApiVerdict {
    let mut v = ApiVerdict {
        requests: samples.len() as u64,
        ..ApiVerdict::default()
    };
    let in_outage = |s: &Sample| {
        let end = s.at + s.millis as f64 / 1000.0;
        outages.iter().any(|(a, b)| end >= *a && s.at <= b + grace)
    };
    let mut ms: Vec<u64> = samples.iter().map(|s| s.millis).collect();
    ms.sort_unstable();
    v.p99_ms = crate::stats::percentile(&ms, 0.99);
    for s in samples {
        let good = match (s.status, &s.problem) {
            (Some(200), None) => {
                v.ok += 1;
                true
            }
            (Some(503), _) if s.retry_after && in_outage(s) => {
                v.unavailable_ok += 1;
                true
            }
            // A stream cut by ClickHouse going away mid-export.
            (Some(200), Some(_)) if s.op == "export" && in_outage(s) => {
                v.unavailable_ok += 1;
                true
            }
            _ => false,
        };
        if !good {
            v.bad += 1;
            if v.first_bad.len() < 10 {
                v.first_bad.push(format!(
                    "{} at {:.1}s: status {} retry-after {} {}ms {}",
                    s.op,
                    s.at,
                    s.status.map_or("none".into(), |c| c.to_string()),
                    s.retry_after,
                    s.millis,
                    s.problem.as_deref().unwrap_or("")
                ));
            }
        }
    }
    v
}
