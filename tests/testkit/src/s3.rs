//! A real S3-compatible server for the S3 destination's tests: moto's server mode
//! (`moto[server]` from PyPI, installed once per machine into the cache by
//! `tests/s3/install-moto.sh`), one server per test on a free loopback port, stopped on drop.
//! Path-style addressing, region `us-east-1`. moto checks neither signatures nor `Content-MD5`
//! (the signing is rusty-s3's, tested against AWS's examples there); it stores, lists and
//! returns objects like S3 does, which is what these tests read back.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action as _, UrlStyle};

use crate::private::start_with_retries;
use crate::workspace_root;

/// How long a signed test request stays valid.
const EXPIRY: Duration = Duration::from_secs(60);

/// A running moto S3 server.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    addr: SocketAddr,
    log: tempfile::NamedTempFile,
}

impl S3Server {
    /// Installs moto if this machine does not have it yet (about 50 s, once), starts it on a
    /// free loopback port and returns once it answers.
    pub fn start() -> Result<Self> {
        let lib = install()?;
        start_with_retries("S3Server", || Self::spawn(&lib))
    }

    fn spawn(lib: &PathBuf) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = tempfile::NamedTempFile::new()?;
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("PYTHONPATH", lib)
            .stdin(Stdio::null())
            .stdout(log.reopen()?)
            .stderr(log.reopen()?)
            .spawn()
            .context("starting python3 -m moto.server")?;
        let mut server = Self { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !answers(addr) {
            if let Some(status) = server.child.try_wait()? {
                bail!("moto exited ({status}): {}", server.log_text());
            }
            if Instant::now() > deadline {
                bail!(
                    "moto did not answer on {addr} in 30 s: {}",
                    server.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// The endpoint URL (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The region every bucket is in.
    pub fn region(&self) -> &'static str {
        "us-east-1"
    }

    /// Credentials for the streams' configuration (moto accepts any).
    pub fn credentials(&self) -> Credentials {
        Credentials::new("AKIDTESTAUDITLOG", "test-secret-key")
    }

    /// The path-style bucket `name` on this server.
    pub fn bucket(&self, name: &str) -> Result<Bucket> {
        Ok(Bucket::new(
            self.endpoint().parse()?,
            UrlStyle::Path,
            name.to_owned(),
            self.region(),
        )?)
    }

    /// Creates bucket `name` with a signed `CreateBucket`.
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        let bucket = self.bucket(name)?;
        let creds = self.credentials();
        let action = bucket.create_bucket(&creds);
        let body = action.body();
        // An empty body (us-east-1) still needs its `Content-Length: 0`.
        let resp = reqwest::Client::new()
            .put(action.sign(EXPIRY))
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body)
            .send()
            .await?;
        ensure!(
            resp.status().is_success(),
            "CreateBucket {name}: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        Ok(())
    }

    /// Every key under `prefix` in `bucket` (ListObjectsV2, following continuation tokens),
    /// with its size.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<(String, u64)>> {
        let bucket = self.bucket(bucket)?;
        let creds = self.credentials();
        let mut token: Option<String> = None;
        let mut keys = Vec::new();
        loop {
            let mut action = ListObjectsV2::new(&bucket, Some(&creds));
            action.with_prefix(prefix);
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let resp = reqwest::get(action.sign(EXPIRY)).await?;
            ensure!(
                resp.status().is_success(),
                "ListObjectsV2: {}",
                resp.status()
            );
            let parsed = ListObjectsV2::parse_response(&resp.text().await?)?;
            keys.extend(
                parsed
                    .contents
                    .into_iter()
                    .map(|o| (o.key, o.size.unwrap_or(0))),
            );
            match parsed.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(keys),
            }
        }
    }

    /// The bytes of object `key` and its `Content-Type`.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, String)> {
        let bucket = self.bucket(bucket)?;
        let creds = self.credentials();
        let resp = reqwest::get(bucket.get_object(Some(&creds), key).sign(EXPIRY)).await?;
        ensure!(
            resp.status().is_success(),
            "GetObject {key}: {}",
            resp.status()
        );
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok((resp.bytes().await?.to_vec(), content_type))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/s3/install-moto.sh`: installs moto once, prints its directory.
fn install() -> Result<PathBuf> {
    let script = workspace_root().join("tests/s3/install-moto.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        out.status.success(),
        "{} failed ({}): the S3 tests need python3 with pip and PyPI; run it by hand to see why",
        script.display(),
        out.status
    );
    let dir = String::from_utf8(out.stdout)?.trim().to_owned();
    ensure!(!dir.is_empty(), "{} printed no directory", script.display());
    Ok(PathBuf::from(dir))
}

/// Whether an HTTP server answers a `GET /` on `addr`.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
