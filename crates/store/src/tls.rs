//! The HTTP(S) client under `clickhouse::Client`: rustls (ring) with the built-in Mozilla roots,
//! or the CA of `clickhouse.ca_file`, and a client certificate for mutual TLS.
//!
//! The connector also turns a failed TLS handshake into an error naming the setting to check
//! ([`SetupError`]), so `clickhouse.ca_file: ...` reaches the operator instead of a bare
//! `client error (Connect)`.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clickhouse::error::Error as ClientError;
use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use tokio::net::TcpStream;

use crate::failover::{Backends, CONNECT_TIMEOUT};

type BoxError = Box<dyn StdError + Send + Sync>;

/// A connection setting that cannot be used (unreadable file, bad PEM, refused handshake).
/// Carried inside the client's network errors; [`setup_error`] finds it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SetupError {
    /// The setting to check, as written in the config file (`clickhouse.ca_file`).
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn setup(field: &'static str, message: impl Into<String>) -> SetupError {
    SetupError {
        field,
        message: message.into(),
    }
}

/// Why a ClickHouse client error happened, when it is a connection setting: a
/// [`SetupError`] from the connector, or a TLS alert that arrived after the handshake (with
/// TLS 1.3 a server refuses a missing client certificate only then). `host` is shown in the
/// message.
pub fn setup_error(err: &(dyn StdError + 'static), host: &str) -> Option<SetupError> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(s) = e.downcast_ref::<SetupError>() {
            return Some(s.clone());
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(handshake_error(tls, host));
        }
        // An `io::Error` wrapping another error (how tokio-rustls reports a TLS failure)
        // does not return it from `source()`.
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

/// [`setup_error`] of a ClickHouse client error.
pub fn client_setup_error(err: &ClientError, host: &str) -> Option<SetupError> {
    setup_error(err, host)
}

/// The TLS files of a ClickHouse connection (`None`: not set).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsFiles<'a> {
    pub ca_file: Option<&'a Path>,
    pub client_cert_file: Option<&'a Path>,
    pub client_key_file: Option<&'a Path>,
}

/// Reads and checks the TLS files into a rustls configuration.
pub(crate) fn client_config(files: TlsFiles<'_>) -> Result<rustls::ClientConfig, SetupError> {
    let roots = match files.ca_file {
        Some(path) => load_roots(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup("clickhouse.url", format!("TLS setup: {e}")))?
        .with_root_certificates(roots);
    match (files.client_cert_file, files.client_key_file) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(_), None) => Err(setup(
            "clickhouse.client_key_file",
            "must be set with clickhouse.client_cert_file",
        )),
        (None, Some(_)) => Err(setup(
            "clickhouse.client_cert_file",
            "must be set with clickhouse.client_key_file",
        )),
        (Some(cert), Some(key)) => {
            let chain = load_certs("clickhouse.client_cert_file", cert)?;
            let key = load_key("clickhouse.client_key_file", key)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                setup(
                    "clickhouse.client_key_file",
                    format!("does not go with clickhouse.client_cert_file: {e}"),
                )
            })
        }
    }
}

fn load_certs(
    field: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let shown = path.display();
    std::fs::metadata(path).map_err(|e| setup(field, format!("cannot read {shown}: {e}")))?;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| setup(field, format!("{shown} is not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(setup(
            field,
            format!("{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ));
    }
    Ok(certs)
}

fn load_roots(path: &Path) -> Result<RootCertStore, SetupError> {
    let field = "clickhouse.ca_file";
    let mut roots = RootCertStore::empty();
    for cert in load_certs(field, path)? {
        roots.add(cert).map_err(|e| {
            setup(
                field,
                format!(
                    "{} holds a certificate that cannot be used as a CA: {e}",
                    path.display()
                ),
            )
        })?;
    }
    Ok(roots)
}

fn load_key(field: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, SetupError> {
    let shown = path.display();
    std::fs::metadata(path).map_err(|e| setup(field, format!("cannot read {shown}: {e}")))?;
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| setup(field, format!("{shown} is not a PEM private key file: {e}")))
}

/// Keep connections alive at the TCP level (as the `clickhouse` crate does by default).
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Below ClickHouse's own keep-alive timeout (3 s before 23.11, 10 s after), as the crate's
/// default client does.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A client (no URL yet) whose connections use `setup`: the loaded TLS configuration, or the
/// error every request fails with. With `backends`, connections go to those servers with
/// failover ([`crate::failover`]) whatever the request's URL says.
pub(crate) fn client(
    setup: Result<rustls::ClientConfig, SetupError>,
    backends: Option<Backends>,
) -> clickhouse::Client {
    let inner = setup.map(|tls| {
        let mut http = HttpConnector::new();
        http.set_keepalive(Some(TCP_KEEPALIVE));
        http.enforce_http(false);
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http)
    });
    let http = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(Connector {
            inner: inner.map_err(Arc::new),
            backends: backends.map(Arc::new),
        });
    clickhouse::Client::with_http_client(http)
}

/// rustls over TCP, with failures explained (see the module docs).
#[derive(Clone)]
pub struct Connector {
    inner: Result<HttpsConnector<HttpConnector>, Arc<SetupError>>,
    backends: Option<Arc<Backends>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

type Stream = MaybeHttpsStream<TokioIo<TcpStream>>;

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match &mut self.inner {
            Ok(c) => c.poll_ready(cx),
            Err(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if let (Ok(inner), Some(backends)) = (&self.inner, &self.backends) {
            return Box::pin(connect_any(inner.clone(), backends.clone()));
        }
        let connect = match &mut self.inner {
            Ok(c) => c.call(uri.clone()),
            Err(e) => {
                let e: BoxError = Box::new(SetupError::clone(e));
                return Box::pin(std::future::ready(Err(e)));
            }
        };
        Box::pin(async move {
            connect.await.map_err(|e| match explain(&*e, &uri) {
                Some(setup) => Box::new(setup) as BoxError,
                None => e,
            })
        })
    }
}

/// A connection to the first of `backends` that accepts one (see [`crate::failover`]).
async fn connect_any(
    mut inner: HttpsConnector<HttpConnector>,
    backends: Arc<Backends>,
) -> Result<Stream, BoxError> {
    let mut last: Option<BoxError> = None;
    for i in backends.order(Instant::now()) {
        let uri = backends.uri(i).clone();
        let error: BoxError = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            tower_service::Service::call(&mut inner, uri.clone()),
        )
        .await
        {
            Ok(Ok(stream)) => {
                backends.connected(i);
                return Ok(stream);
            }
            Ok(Err(e)) => match explain(&*e, &uri) {
                Some(setup) => Box::new(setup),
                None => e,
            },
            Err(_) => format!("no connection to {uri} within {CONNECT_TIMEOUT:?}").into(),
        };
        backends.failed(i, Instant::now(), &error.to_string());
        last = Some(error);
    }
    Err(last.unwrap_or_else(|| "no ClickHouse URL".into()))
}

/// A setup error for a failed TLS handshake, naming the setting most likely at fault.
fn explain(err: &(dyn StdError + 'static), uri: &Uri) -> Option<SetupError> {
    let host = uri.authority().map_or("?", |a| a.as_str());
    setup_error(err, host)
}

fn handshake_error(tls: &rustls::Error, host: &str) -> SetupError {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error as E};
    let (field, hint) = match tls {
        E::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => (
            "clickhouse.url",
            "the server's certificate is not valid for this host name",
        ),
        E::InvalidCertificate(_) => (
            "clickhouse.ca_file",
            "the server's certificate is not signed by a trusted CA (set clickhouse.ca_file \
             to the CA that signed it)",
        ),
        E::AlertReceived(
            Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::AccessDenied,
        ) => (
            "clickhouse.client_cert_file",
            "the server refused the client certificate (or needs one)",
        ),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => (
            "clickhouse.url",
            "the server does not speak TLS on this port (use its https_port, or http://)",
        ),
        _ => ("clickhouse.ca_file", "check the TLS settings"),
    };
    setup(
        field,
        format!("TLS handshake with {host} failed: {tls}: {hint}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_bad_file_names_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let files = TlsFiles {
            ca_file: Some(&missing),
            client_cert_file: None,
            client_key_file: None,
        };
        let e = client_config(files).unwrap_err();
        assert_eq!(e.field, "clickhouse.ca_file");
        assert!(e.message.contains("nope.pem"), "{e}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let files = TlsFiles {
            ca_file: Some(&garbage),
            ..files
        };
        let e = client_config(files).unwrap_err();
        assert_eq!(e.field, "clickhouse.ca_file");
        assert!(e.message.contains("no PEM certificate"), "{e}");

        let files = TlsFiles {
            ca_file: None,
            client_cert_file: Some(&garbage),
            client_key_file: None,
        };
        assert_eq!(
            client_config(files).unwrap_err().field,
            "clickhouse.client_key_file"
        );
    }

    #[test]
    fn a_tls_error_inside_an_io_error_is_found() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let boxed: BoxError = Box::new(io);
        let found = setup_error(&*boxed, "h:1").expect("found");
        assert_eq!(found.field, "clickhouse.ca_file");
    }

    #[test]
    fn handshake_errors_name_the_setting() {
        let uri = "ch.example:8443";
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let e = handshake_error(&unknown, uri);
        assert_eq!(e.field, "clickhouse.ca_file");
        assert!(e.message.contains("ch.example:8443"), "{e}");
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert_eq!(handshake_error(&name, uri).field, "clickhouse.url");
        let refused = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        assert_eq!(
            handshake_error(&refused, uri).field,
            "clickhouse.client_cert_file"
        );
    }
}
