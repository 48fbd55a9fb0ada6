//! TLS and SASL against real servers of their own (never the shared stack), with a PKI each
//! test generates: ClickHouse over HTTPS with mutual TLS (migrate, write, read; a wrong CA and
//! a missing client certificate are startup errors naming the setting), and the whole
//! pipeline (`auditlog migrate`, `emit`, `consume`) with Kafka over mutual TLS + SASL
//! SCRAM-SHA-512 and ClickHouse over HTTPS.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use auditlog_store::plans::{get_plan, set_plan};
use auditlog_store::{ClickHouseConfig, Plan};
use auditlog_testkit::tls::{free_port, HttpsClickHouse, SaslBroker, TestPki, TlsProxy};
use auditlog_testkit::{auditlog_bin, unique_name};

fn https_config(ch: &HttpsClickHouse, pki: &TestPki, database: &str) -> ClickHouseConfig {
    ClickHouseConfig {
        url: ch.https_url(),
        database: database.to_owned(),
        ca_file: Some(pki.ca.clone()),
        client_cert_file: Some(pki.client_cert.clone()),
        client_key_file: Some(pki.client_key.clone()),
        ..ClickHouseConfig::default()
    }
}

/// `AUDITLOG_CLICKHOUSE__*` for `cfg`.
fn clickhouse_vars(cfg: &ClickHouseConfig) -> Vec<(String, String)> {
    let mut vars = vec![
        ("AUDITLOG_CLICKHOUSE__URL".to_owned(), cfg.url.clone()),
        (
            "AUDITLOG_CLICKHOUSE__DATABASE".to_owned(),
            cfg.database.clone(),
        ),
    ];
    let files = [
        ("AUDITLOG_CLICKHOUSE__CA_FILE", &cfg.ca_file),
        (
            "AUDITLOG_CLICKHOUSE__CLIENT_CERT_FILE",
            &cfg.client_cert_file,
        ),
        ("AUDITLOG_CLICKHOUSE__CLIENT_KEY_FILE", &cfg.client_key_file),
    ];
    for (key, path) in files {
        if let Some(p) = path {
            vars.push((key.to_owned(), p.display().to_string()));
        }
    }
    vars
}

fn auditlog(vars: &[(String, String)], args: &[&str]) -> Result<Output> {
    Command::new(auditlog_bin())
        .args(args)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info,librdkafka=warn")
        .stdin(Stdio::null())
        .output()
        .context("run auditlog (cargo build -p auditlog first)")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_over_https_with_client_certificate_migrates_writes_and_reads() -> Result<()> {
    let pki = TestPki::generate()?;
    let ch = HttpsClickHouse::start(&pki, true)?;
    let cfg = https_config(&ch, &pki, &unique_name("tls"));
    cfg.validate()?;

    // Migrate, write and read over HTTPS, through the library...
    let applied = auditlog_store::migrate(&cfg).await?;
    ensure!(
        applied.len() == auditlog_store::MIGRATIONS.len(),
        "applied {applied:?}"
    );
    cfg.check_tls().await?;
    set_plan(&cfg.client(), "ws_tls", Plan::Pro).await?;
    let plan = get_plan(&cfg.client(), "ws_tls").await?;
    ensure!(plan.plan == Plan::Pro, "read back {plan:?}");

    // ... and through the binary.
    let vars = clickhouse_vars(&cfg);
    let out = auditlog(&vars, &["migrate"])?;
    ensure!(out.status.success(), "auditlog migrate: {}", text(&out));
    let out = auditlog(
        &vars,
        &["plan", "set", "ws_bin", "enterprise", "--days", "400"],
    )?;
    ensure!(out.status.success(), "auditlog plan set: {}", text(&out));
    let out = auditlog(&vars, &["plan", "get", "ws_bin"])?;
    ensure!(out.status.success(), "auditlog plan get: {}", text(&out));
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("400"),
        "plan get: {}",
        text(&out)
    );

    // A CA that did not sign the server's certificate: a startup error naming the setting.
    let wrong_ca = ClickHouseConfig {
        ca_file: Some(pki.other_ca.clone()),
        ..cfg.clone()
    };
    wrong_ca.validate()?; // the file itself is a fine CA
    let err = auditlog_store::migrate(&wrong_ca).await.unwrap_err();
    let msg = err.to_string();
    ensure!(
        matches!(
            &err,
            auditlog_store::Error::Config(setting) if setting.field == "clickhouse.ca_file"
        ),
        "{msg}"
    );
    ensure!(msg.contains("TLS handshake"), "{msg}");
    let err = wrong_ca.check_tls().await.unwrap_err().to_string();
    ensure!(err.contains("clickhouse.ca_file"), "{err}");
    let out = auditlog(&clickhouse_vars(&wrong_ca), &["migrate"])?;
    ensure!(!out.status.success(), "migrate with a wrong CA succeeded");
    ensure!(
        text(&out).contains("clickhouse.ca_file") && !text(&out).contains("client error (Connect)"),
        "{}",
        text(&out)
    );

    // No client certificate where the server requires one.
    let no_cert = ClickHouseConfig {
        client_cert_file: None,
        client_key_file: None,
        ..cfg.clone()
    };
    let err = no_cert.check_tls().await.unwrap_err().to_string();
    ensure!(err.contains("clickhouse.client_cert_file"), "{err}");

    // A CA file that is not PEM: refused at startup by validation, before any connection.
    let bad = tempfile::NamedTempFile::new()?;
    std::fs::write(bad.path(), "not a certificate")?;
    let mut vars = clickhouse_vars(&cfg);
    vars.push((
        "AUDITLOG_CLICKHOUSE__CA_FILE".into(),
        bad.path().display().to_string(),
    ));
    let out = auditlog(&vars, &["migrate"])?;
    ensure!(!out.status.success());
    ensure!(text(&out).contains("clickhouse.ca_file"), "{}", text(&out));
    Ok(())
}

/// Kafka settings for `auditlog` through `proxy` with SCRAM user `auditlog`.
fn kafka_vars(
    proxy: &TlsProxy,
    pki: &TestPki,
    topic: &str,
    dlq_topic: &str,
    password_file: &std::path::Path,
) -> Vec<(String, String)> {
    [
        ("AUDITLOG_KAFKA__BROKERS", proxy.brokers()),
        ("AUDITLOG_KAFKA__TOPIC", topic.to_owned()),
        ("AUDITLOG_KAFKA__DLQ_TOPIC", dlq_topic.to_owned()),
        ("AUDITLOG_KAFKA__SECURITY_PROTOCOL", "sasl_ssl".to_owned()),
        ("AUDITLOG_KAFKA__SSL_CA_FILE", pki.ca.display().to_string()),
        (
            "AUDITLOG_KAFKA__SSL_CERT_FILE",
            pki.client_cert.display().to_string(),
        ),
        (
            "AUDITLOG_KAFKA__SSL_KEY_FILE",
            pki.client_key.display().to_string(),
        ),
        ("AUDITLOG_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512".to_owned()),
        ("AUDITLOG_KAFKA__SASL_USERNAME", "auditlog".to_owned()),
        (
            "AUDITLOG_KAFKA__SASL_PASSWORD_FILE",
            password_file.display().to_string(),
        ),
        ("AUDITLOG_PRODUCER__STARTUP_TIMEOUT", "5s".to_owned()),
        ("AUDITLOG_CONSUMER__METRICS_LISTEN", String::new()),
        ("AUDITLOG_CONSUMER__GROUP_ID", unique_name("tls_group")),
        ("AUDITLOG_CONSUMER__SESSION_TIMEOUT", "6s".to_owned()),
        ("AUDITLOG_CONSUMER__BATCH_MAX_WAIT", "300ms".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn set(vars: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut out: Vec<_> = vars.iter().filter(|(k, _)| k != key).cloned().collect();
    out.push((key.to_owned(), value.to_owned()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_over_kafka_mutual_tls_sasl_scram_and_clickhouse_https() -> Result<()> {
    const N: u64 = 300;
    let pki = TestPki::generate()?;
    let broker_port = free_port()?;
    // Kafka over TLS: a TLS listener requiring a client certificate of the test CA in front of
    // the broker, which advertises it (Tansu 0.6.0 itself serves plain TCP only).
    let proxy = TlsProxy::start(&pki, ([127, 0, 0, 1], broker_port).into(), true).await?;
    let topic = unique_name("tls_events");
    let dlq_topic = unique_name("tls_dlq");
    let broker = {
        let (topic, dlq_topic, proxy_port) = (topic.clone(), dlq_topic.clone(), proxy.port());
        tokio::task::spawn_blocking(move || {
            SaslBroker::start(
                broker_port,
                Some(proxy_port),
                &[("auditlog", "correct horse battery staple")],
                &[(topic.as_str(), 2), (dlq_topic.as_str(), 1)],
            )
        })
        .await??
    };
    let ch = HttpsClickHouse::start(&pki, false)?;
    let ch_cfg = ClickHouseConfig {
        url: ch.https_url(),
        database: unique_name("tls_pipeline"),
        ca_file: Some(pki.ca.clone()),
        ..ClickHouseConfig::default()
    };
    let password = tempfile::NamedTempFile::new()?;
    std::fs::write(password.path(), "correct horse battery staple\n")?;
    let mut vars = kafka_vars(&proxy, &pki, &topic, &dlq_topic, password.path());
    vars.extend(clickhouse_vars(&ch_cfg));

    let out = auditlog(&vars, &["migrate"])?;
    ensure!(out.status.success(), "migrate: {}", text(&out));
    let out = auditlog(&vars, &["emit", "--synthetic", &N.to_string()])?;
    ensure!(out.status.success(), "emit over SASL_SSL: {}", text(&out));

    let log = tempfile::NamedTempFile::new()?;
    let mut consumer = Command::new(auditlog_bin())
        .arg("consume")
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info,librdkafka=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen()?)
        .spawn()
        .context("spawn auditlog consume")?;
    let client = ch_cfg.client();
    let start = Instant::now();
    let rows = loop {
        let rows: u64 = client
            .query("SELECT count() FROM events FINAL")
            .fetch_one()
            .await?;
        if rows >= N || start.elapsed() > Duration::from_secs(120) {
            break rows;
        }
        if let Some(status) = consumer.try_wait()? {
            bail!(
                "consumer exited ({status}): {}",
                std::fs::read_to_string(log.path())?
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = Command::new("kill")
        .args(["-TERM", &consumer.id().to_string()])
        .status();
    let status = consumer.wait()?;
    let consumer_log = std::fs::read_to_string(log.path())?;
    ensure!(
        rows == N,
        "{rows} rows of {N}; consumer log:\n{consumer_log}"
    );
    ensure!(status.success(), "consumer exit {status}:\n{consumer_log}");

    // The wrong SASL password, the wrong CA, no client certificate: nothing gets through, and
    // the error says what to check.
    let wrong = tempfile::NamedTempFile::new()?;
    std::fs::write(wrong.path(), "not the password")?;
    let cases = [
        set(
            &vars,
            "AUDITLOG_KAFKA__SASL_PASSWORD_FILE",
            &wrong.path().display().to_string(),
        ),
        set(
            &vars,
            "AUDITLOG_KAFKA__SSL_CA_FILE",
            &pki.other_ca.display().to_string(),
        ),
        vars.iter()
            .filter(|(k, _)| {
                !k.starts_with("AUDITLOG_KAFKA__SSL_CERT")
                    && !k.starts_with("AUDITLOG_KAFKA__SSL_KEY")
            })
            .cloned()
            .collect(),
    ];
    for case in &cases {
        let out = auditlog(case, &["emit", "--synthetic", "1"])?;
        ensure!(!out.status.success(), "emit succeeded: {}", text(&out));
        ensure!(
            text(&out).contains("kafka.security_protocol"),
            "{}",
            text(&out)
        );
    }
    drop(broker);
    Ok(())
}
