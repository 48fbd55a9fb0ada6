//! Connection failover against the real test ClickHouse (`TEST_CLICKHOUSE_URL`, from
//! `deploy/local/stack.sh env`): a dead first URL is skipped, and every dead URL gives the
//! callers' usual network error.

use std::time::{Duration, Instant};

use auditlog_store::{classify, Class, ClickHouseConfig};

fn live_url() -> String {
    std::env::var("TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".into())
}

/// A loopback port nothing listens on (bound, then released).
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

async fn select_one(cfg: &ClickHouseConfig) -> Result<u8, clickhouse::error::Error> {
    cfg.server_client()
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await
}

#[tokio::test]
async fn a_dead_first_url_fails_over_to_the_next_and_stays_there() {
    let cfg = ClickHouseConfig {
        url: dead_url(),
        failover_urls: vec![dead_url(), live_url()],
        ..Default::default()
    };
    cfg.validate().unwrap();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    auditlog_store::failover::register_metrics();
    let failovers = || {
        let text = prometheus.render();
        text.lines()
            .find_map(|l| l.strip_prefix("auditlog_clickhouse_failovers_total "))
            .map(|v| v.trim().to_owned())
    };
    assert_eq!(failovers().as_deref(), Some("0"));
    let client = cfg.server_client();
    let t = Instant::now();
    let n: u8 = client.query("SELECT 1").fetch_one().await.unwrap();
    assert_eq!(n, 1);
    // Refused connections fail over at once, not after a timeout.
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // Later requests (new connections included) go to the live server directly.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let n: u8 = client.query("SELECT 1").fetch_one().await.unwrap();
        assert_eq!(n, 1);
    }
    // One move (to the third URL), counted once however many connections followed.
    assert_eq!(failovers().as_deref(), Some("1"));
}

#[tokio::test]
async fn without_failover_urls_a_dead_url_is_a_transient_error() {
    let cfg = ClickHouseConfig {
        url: dead_url(),
        ..Default::default()
    };
    let err = select_one(&cfg).await.unwrap_err();
    assert_eq!(classify(&err), Class::Transient, "{err}");
}

#[tokio::test]
async fn every_url_dead_is_a_transient_error_naming_no_setting() {
    let cfg = ClickHouseConfig {
        url: dead_url(),
        failover_urls: vec![dead_url()],
        ..Default::default()
    };
    let err = select_one(&cfg).await.unwrap_err();
    assert_eq!(classify(&err), Class::Transient, "{err}");
    assert!(
        auditlog_store::tls::client_setup_error(&err, "h").is_none(),
        "{err}"
    );
}

#[test]
fn failover_urls_must_share_the_scheme_of_url() {
    let cfg = ClickHouseConfig {
        failover_urls: vec!["https://ch2:8443".into()],
        ..Default::default()
    };
    let msg = cfg.validate().unwrap_err().to_string();
    assert!(msg.contains("clickhouse.failover_urls"), "{msg}");
    let quorum_alone = ClickHouseConfig {
        insert_quorum: 2,
        ..Default::default()
    };
    let msg = quorum_alone.validate().unwrap_err().to_string();
    assert!(msg.contains("clickhouse.insert_quorum"), "{msg}");
    let bad_cluster = ClickHouseConfig {
        cluster: "a b".into(),
        ..Default::default()
    };
    let msg = bad_cluster.validate().unwrap_err().to_string();
    assert!(msg.contains("clickhouse.cluster"), "{msg}");
}
