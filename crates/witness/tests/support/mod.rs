//! Shared by the witness tests: a test log (tlog's Appender and TileSet, a note key) that signs
//! checkpoints and builds consistency proofs, and a witness served in-process on 127.0.0.1:0
//! through the binary's serve loop.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auditlog_query::api::serve::{serve, Limits};
use auditlog_tlog::{merkle, Appender, Checkpoint, Hash, KeyKind, Note, Signer, TileSet, Verifier};
use auditlog_witness::{TrustedLog, Witness, WitnessConfig};
use tokio::sync::oneshot;

/// The origin prefix every test log is under.
pub const PREFIX: &str = "auditlog.test/";

/// A log: its key, its leaves (as tiles) and its origin.
pub struct TestLog {
    pub signer: Signer,
    pub origin: String,
    tag: String,
    appender: Appender,
    tiles: TileSet,
    roots: Vec<Hash>,
}

impl TestLog {
    /// An empty log `origin` signed by `key_name`'s key; leaves are derived from `tag`.
    pub fn new(origin: &str, tag: &str) -> TestLog {
        TestLog::with_signer(
            origin,
            tag,
            Signer::generate("auditlog.test", KeyKind::Note).unwrap(),
        )
    }

    pub fn with_signer(origin: &str, tag: &str, signer: Signer) -> TestLog {
        let appender = Appender::new();
        TestLog {
            signer,
            origin: origin.to_owned(),
            tag: tag.to_owned(),
            roots: vec![appender.root()],
            appender,
            tiles: TileSet::new(Vec::new()),
        }
    }

    /// A log with the same key and origin whose leaves are derived from another tag (a fork).
    pub fn fork(&self, tag: &str) -> TestLog {
        TestLog::with_signer(
            &self.origin,
            tag,
            Signer::from_private_key(&self.signer.private_key()).unwrap(),
        )
    }

    pub fn verifier(&self) -> Verifier {
        self.signer.verifier()
    }

    /// Appends leaves until the size is `size`.
    pub fn grow_to(&mut self, size: u64) -> &mut Self {
        while self.appender.size() < size {
            let i = self.appender.size();
            self.appender
                .append(merkle::leaf_hash(format!("{}-{i}", self.tag).as_bytes()));
            self.roots.push(self.appender.root());
        }
        for t in self.appender.take_changed() {
            self.tiles.insert(t);
        }
        self
    }

    pub fn size(&self) -> u64 {
        self.appender.size()
    }

    pub fn root(&self) -> Hash {
        self.appender.root()
    }

    /// The checkpoint body at the current size.
    pub fn body(&self) -> String {
        Checkpoint::new(&self.origin, self.size(), self.root(), 1_700_000_000_000).to_text()
    }

    /// The current checkpoint, signed by the log's key.
    pub fn signed(&self) -> String {
        sign(&self.signer, &self.body())
    }

    /// The consistency proof from `old` to the current size (empty from 0).
    pub fn proof(&self, old: u64) -> Vec<Hash> {
        if old == 0 || old >= self.size() {
            return Vec::new();
        }
        merkle::consistency_proof(old, self.size(), &self.tiles).unwrap()
    }

    /// The `add-checkpoint` body from `old`.
    pub fn add_body(&self, old: u64) -> String {
        auditlog_witness::request::encode(old, &self.proof(old), &self.signed())
    }
}

/// `text` signed by `signer` as a note.
pub fn sign(signer: &Signer, text: &str) -> String {
    Note {
        text: text.to_owned(),
        signatures: vec![signer.sign_note(text).unwrap()],
    }
    .to_string()
}

/// A witness served on 127.0.0.1:0.
pub struct Served {
    pub url: String,
    pub addr: std::net::SocketAddr,
    pub witness: Arc<Witness>,
    pub verifier: Verifier,
    pub state_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// A witness key file and config trusting `logs` (prefix, log key), state in `dir`.
pub fn config(dir: &Path, witness_key: &Signer, logs: &[(&str, &Verifier)]) -> WitnessConfig {
    let key_file = dir.join("witness.key");
    if !key_file.exists() {
        std::fs::write(&key_file, format!("{}\n", witness_key.private_key())).unwrap();
    }
    WitnessConfig {
        listen: "127.0.0.1:0".into(),
        key_file: key_file.display().to_string(),
        state_dir: dir.join("state").display().to_string(),
        logs: logs
            .iter()
            .map(|(prefix, v)| TrustedLog {
                origin_prefix: (*prefix).to_owned(),
                verifier_key: v.to_string(),
            })
            .collect(),
        max_body_bytes: 16 * 1024,
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..WitnessConfig::default()
    }
}

pub fn witness_key() -> Signer {
    Signer::generate("witness.test", KeyKind::Cosignature).unwrap()
}

impl Served {
    /// Opens the witness of `cfg` and serves it.
    pub async fn start(cfg: &WitnessConfig) -> Served {
        let witness = Arc::new(Witness::open(cfg).unwrap());
        let verifier = witness.verifier();
        let app = auditlog_witness::server::app(witness.clone(), cfg.max_body_bytes);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let limits = Limits {
            header_read_timeout: cfg.header_read_timeout,
            idle_timeout: cfg.idle_timeout,
            max_connections: cfg.max_connections,
            shutdown_timeout: Duration::from_secs(2),
            listener: "witness",
        };
        let task = tokio::spawn(serve(listener, app, limits, async {
            let _ = rx.await;
        }));
        Served {
            url: format!("http://{addr}"),
            addr,
            witness,
            verifier,
            state_dir: PathBuf::from(&cfg.state_dir),
            stop: Some(tx),
            task,
        }
    }

    /// Stops serving and drops the witness (its file is closed).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap();
    }

    /// POSTs `body` to `/add-checkpoint`: status, content type, body.
    pub async fn add(&self, body: impl Into<reqwest::Body>) -> (u16, String, String) {
        let resp = reqwest::Client::new()
            .post(format!("{}/add-checkpoint", self.url))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, ctype, resp.text().await.unwrap())
    }

    /// `GET /checkpoint?origin=`: status and body.
    pub async fn latest(&self, origin: &str) -> (u16, String) {
        let resp = reqwest::Client::new()
            .get(format!("{}/checkpoint", self.url))
            .query(&[("origin", origin)])
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// `GET /log`, parsed.
    pub async fn log_lines(&self) -> Vec<serde_json::Value> {
        let text = reqwest::get(format!("{}/log", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn file(&self) -> PathBuf {
        self.state_dir.join(auditlog_witness::state::FILE_NAME)
    }
}
