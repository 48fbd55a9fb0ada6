//! Real TLS for tests: a throwaway PKI ([`TestPki`]), a private ClickHouse serving HTTPS with
//! it ([`HttpsClickHouse`]), a private Tansu broker with SASL/SCRAM users ([`SaslBroker`]) and a
//! TLS listener in front of a broker ([`TlsProxy`]), each on ports of its own and stopped when
//! dropped. Never the shared test stack.
//!
//! Tansu 0.6.0 serves no TLS (`--cert` and `--key` cannot be given together, and its listener
//! stays plain TCP: `tansu-broker` builds the `TlsAcceptor` and drops it), so Kafka over TLS is
//! tested through
//! [`TlsProxy`], which terminates TLS (and checks client certificates) the way a TLS load
//! balancer in front of Kafka does, and advertises itself as the broker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::{free_ports, sigkill, unique_name, workspace_root};

/// PEM files of a test CA, a server certificate it signed (for `localhost` and `127.0.0.1`), a
/// client certificate it signed, and a second CA that signed neither.
#[derive(Debug)]
pub struct TestPki {
    _dir: tempfile::TempDir,
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// A CA unrelated to the certificates (the "wrong CA").
    pub other_ca: PathBuf,
    /// Server certificate (`localhost`, `127.0.0.1`).
    pub server_cert: PathBuf,
    /// Its private key (PKCS#8).
    pub server_key: PathBuf,
    /// Client certificate (CN `auditlog-test-client`).
    pub client_cert: PathBuf,
    /// Its private key (PKCS#8).
    pub client_key: PathBuf,
}

fn ca(name: &str) -> Result<(Issuer<'static, KeyPair>, String)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let pem = params.self_signed(&key)?.pem();
    Ok((Issuer::new(params, key), pem))
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String)> {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl TestPki {
    /// Generates everything into a temporary directory (removed on drop).
    pub fn generate() -> Result<Self> {
        let dir = tempfile::tempdir().context("temp dir for the test PKI")?;
        let (issuer, ca_pem) = ca("auditlog test CA")?;
        let (_, other_pem) = ca("some other CA")?;
        let (server_pem, server_key) = leaf(
            &issuer,
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (client_pem, client_key) = leaf(
            &issuer,
            "auditlog-test-client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let write = |name: &str, text: &str| -> Result<PathBuf> {
            let path = dir.path().join(name);
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
            Ok(path)
        };
        Ok(Self {
            ca: write("ca.pem", &ca_pem)?,
            other_ca: write("other-ca.pem", &other_pem)?,
            server_cert: write("server.pem", &server_pem)?,
            server_key: write("server.key", &server_key)?,
            client_cert: write("client.pem", &client_pem)?,
            client_key: write("client.key", &client_key)?,
            _dir: dir,
        })
    }
}

/// The chdb library the stack runs ClickHouse from (installed by `deploy/local/stack.sh up`).
fn chdb_library() -> Result<PathBuf> {
    let cache = std::env::var_os("STACK_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("auditlog")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/auditlog")))
        .context("no HOME to find the ClickHouse library")?;
    let lib = cache.join("chdb-3.7.2/chdb/_chdb.abi3.so");
    if !lib.is_file() {
        bail!(
            "no ClickHouse library at {} (run `STACK_PROFILE=test deploy/local/stack.sh up` once)",
            lib.display()
        );
    }
    Ok(lib)
}

/// A private ClickHouse (the stack's library and configuration) that also serves HTTPS with
/// the [`TestPki`] server certificate, optionally requiring a client certificate signed by its
/// CA. Stopped (SIGTERM, then SIGKILL) and its data removed on drop.
#[derive(Debug)]
pub struct HttpsClickHouse {
    child: Child,
    dir: PathBuf,
    http_port: u16,
    https_port: u16,
}

impl HttpsClickHouse {
    /// Starts it and waits until both ports answer (a few seconds). Blocking.
    pub fn start(pki: &TestPki, require_client_cert: bool) -> Result<Self> {
        let lib = chdb_library()?;
        let ports = free_ports(3)?;
        let (http_port, tcp_port, https_port) = (ports[0], ports[1], ports[2]);
        let dir = workspace_root()
            .join(".data/private")
            .join(unique_name("https-ch"));
        let d = dir.join("clickhouse");
        for sub in auditlog_stack::components::CLICKHOUSE_DIRS {
            std::fs::create_dir_all(d.join(sub))?;
        }
        std::fs::create_dir_all(dir.join("logs"))?;
        let server = auditlog_stack::cluster::ChServer {
            component: auditlog_stack::Component::ClickHouse,
            http: http_port,
            tcp: tcp_port,
            replica: None,
        };
        let render = |template: &str| -> Result<String> {
            let path = workspace_root().join("deploy/local").join(template);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            Ok(auditlog_stack::components::render_template(
                &text, &dir, &server, "0.1",
            ))
        };
        let verification = if require_client_cert {
            "strict"
        } else {
            "none"
        };
        let tls = format!(
            "    <https_port>{https_port}</https_port>\n    <openSSL><server>\n        \
             <certificateFile>{}</certificateFile>\n        \
             <privateKeyFile>{}</privateKeyFile>\n        \
             <caConfig>{}</caConfig>\n        \
             <verificationMode>{verification}</verificationMode>\n        \
             <loadDefaultCAFile>false</loadDefaultCAFile>\n        \
             <cacheSessions>true</cacheSessions>\n        \
             <disableProtocols>sslv2,sslv3</disableProtocols>\n        \
             <preferServerCiphers>true</preferServerCiphers>\n    \
             </server></openSSL>\n</clickhouse>",
            pki.server_cert.display(),
            pki.server_key.display(),
            pki.ca.display(),
        );
        let config = render("clickhouse-config.xml.in")?.replace("</clickhouse>", &tls);
        std::fs::write(d.join("config.xml"), config)?;
        std::fs::write(d.join("users.xml"), render("clickhouse-users.xml.in")?)?;
        let out = std::fs::File::create(dir.join("logs/clickhouse.out"))?;
        let child = Command::new("python3")
            .arg(workspace_root().join("deploy/local/clickhouse_server.py"))
            .arg(&lib)
            .arg(d.join("config.xml"))
            .env("CLICKHOUSE_WATCHDOG_ENABLE", "0")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("start ClickHouse")?;
        let mut server = Self {
            child,
            dir,
            http_port,
            https_port,
        };
        server.wait_ready(Duration::from_secs(60))?;
        Ok(server)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("ClickHouse exited ({status}): {}", self.log_tail());
            }
            let ping = http_ping(self.http_port);
            let https = std::net::TcpStream::connect(("127.0.0.1", self.https_port)).is_ok();
            if ping && https {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "ClickHouse not ready after {timeout:?}: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["clickhouse.out", "clickhouse-server.err.log"] {
            let text =
                std::fs::read_to_string(self.dir.join("logs").join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "\n--- {name}\n{}",
                lines[lines.len().saturating_sub(15)..].join("\n")
            ));
        }
        out
    }

    /// `https://127.0.0.1:PORT` (the server certificate names `127.0.0.1` and `localhost`).
    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.https_port)
    }

    /// The plain HTTP port's URL (to set things up without TLS).
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
}

fn http_ping(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.ends_with("Ok.\n")
}

fn stop_child(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    sigkill(child.id());
    let _ = child.wait();
}

impl Drop for HttpsClickHouse {
    fn drop(&mut self) {
        stop_child(&mut self.child);
        if std::env::var_os("KEEP_PRIVATE_STACK").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The Tansu binary the stack uses (`STACK_TANSU_BIN`, `tansu` on `PATH`, `~/.cargo/bin/tansu`).
fn tansu_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("STACK_TANSU_BIN") {
        return bin.into();
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("tansu"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
            });
        home.join("bin/tansu")
    })
}

/// A private Tansu broker (sqlite storage of its own) that requires SASL authentication;
/// its SCRAM users and topics are created before authentication is switched on (Tansu
/// requires it for every request but the SASL ones). Stopped and removed on drop.
#[derive(Debug)]
pub struct SaslBroker {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl SaslBroker {
    /// Starts Tansu on `port` (see [`free_port`]), advertising `advertised_port` (a
    /// [`TlsProxy`] in front of it) or its own port, with SCRAM-SHA-512 `users` (name,
    /// password) and `topics` (name, partitions). Blocking.
    pub fn start(
        port: u16,
        advertised_port: Option<u16>,
        users: &[(&str, &str)],
        topics: &[(&str, i32)],
    ) -> Result<Self> {
        let dir = workspace_root()
            .join(".data/private")
            .join(unique_name("sasl-broker"));
        std::fs::create_dir_all(dir.join("tansu"))?;
        let own = format!("tcp://127.0.0.1:{port}");
        // Set up users and topics without authentication, then restart with it.
        let mut setup = Self::spawn(&dir, port, &own, false)?;
        let result = (|| -> Result<()> {
            wait_port(port, &mut setup, &dir)?;
            for &(name, password) in users {
                run(Command::new(tansu_bin())
                    .args(["user", "create", "--broker", own.as_str()])
                    .args(["--mechanism", "scram512", name, password]))?;
            }
            for &(name, partitions) in topics {
                run(Command::new(tansu_bin())
                    .args(["topic", "create", name, "--broker", own.as_str()])
                    .arg("--partitions")
                    .arg(partitions.to_string()))?;
            }
            Ok(())
        })();
        stop_child(&mut setup);
        result?;
        let advertised = format!("tcp://127.0.0.1:{}", advertised_port.unwrap_or(port));
        let mut child = Self::spawn(&dir, port, &advertised, true)?;
        wait_port(port, &mut child, &dir)?;
        Ok(Self { child, dir, port })
    }

    fn spawn(dir: &Path, port: u16, advertised: &str, authentication: bool) -> Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("tansu.log"))?;
        let mut cmd = Command::new(tansu_bin());
        cmd.current_dir(dir)
            .arg("broker")
            .args(["--listener-url", &format!("tcp://127.0.0.1:{port}")])
            .args(["--advertised-listener-url", advertised])
            .args(["--storage-engine", "sqlite://tansu/tansu.db"])
            .arg("--silent");
        if authentication {
            cmd.arg("--authentication");
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", tansu_bin().display()))
    }

    /// Its plain TCP address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Bootstrap brokers of its own listener.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> Result<u16> {
    Ok(free_ports(1)?[0])
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn wait_port(port: u16, child: &mut Child, dir: &Path) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("tansu.log")).unwrap_or_default();
            bail!("tansu exited ({status}): {log}");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("tansu not listening on {port} after 30 s")
}

impl Drop for SaslBroker {
    fn drop(&mut self) {
        stop_child(&mut self.child);
        if std::env::var_os("KEEP_PRIVATE_STACK").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A TLS listener (the [`TestPki`] server certificate; optionally requiring a client
/// certificate of its CA) forwarding every connection to a plain TCP upstream. Runs on the
/// current Tokio runtime; stops when dropped.
#[derive(Debug)]
pub struct TlsProxy {
    port: u16,
    task: JoinHandle<()>,
}

impl TlsProxy {
    /// Binds a free port now; connections are forwarded to `upstream`.
    pub async fn start(
        pki: &TestPki,
        upstream: SocketAddr,
        require_client_cert: bool,
    ) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs =
            CertificateDer::pem_file_iter(&pki.server_cert)?.collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(&pki.server_key)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(&pki.ca)? {
                roots.add(ca?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder.with_single_cert(certs, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        });
        Ok(Self { port, task })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Bootstrap brokers through it (`127.0.0.1:PORT`, an address its certificate holds).
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
