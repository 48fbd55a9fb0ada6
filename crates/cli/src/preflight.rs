//! Checks made before a short-lived command builds a Kafka client, so that its first line of
//! output says what is wrong instead of librdkafka's reconnect noise.

use std::time::Duration;

use anyhow::{bail, Result};
use auditlog_producer::KafkaConfig;

/// How long one TCP connection attempt to a bootstrap broker may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Fails with one actionable line when no bootstrap broker of `kafka.brokers` accepts a TCP
/// connection: `cannot reach the Kafka broker at 127.0.0.1:9092 (kafka.brokers): connection
/// refused`. A broker that accepts the connection passes (the client reports what follows).
pub async fn brokers(kafka: &KafkaConfig) -> Result<()> {
    let list: Vec<&str> = kafka
        .brokers
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .collect();
    let mut failures = Vec::with_capacity(list.len());
    for broker in &list {
        match connect(broker).await {
            Ok(()) => return Ok(()),
            Err(why) => failures.push((*broker, why)),
        }
    }
    match failures.as_slice() {
        [] => Ok(()),
        [(broker, why)] => {
            bail!("cannot reach the Kafka broker at {broker} (kafka.brokers): {why}")
        }
        many => bail!(
            "cannot reach any Kafka broker of {} (kafka.brokers): {}",
            kafka.brokers,
            many.iter()
                .map(|(b, why)| format!("{b}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// `host:port` of a bootstrap entry (`SSL://host:port`, `host` alone = port 9092).
fn address(broker: &str) -> String {
    let hostport = broker.split_once("://").map_or(broker, |(_, rest)| rest);
    let has_port = match hostport.rsplit_once(':') {
        // `[::1]` alone has a colon inside the brackets only.
        Some((host, port)) => !port.contains(']') && !host.is_empty(),
        None => false,
    };
    if has_port {
        hostport.to_owned()
    } else {
        format!("{hostport}:9092")
    }
}

async fn connect(broker: &str) -> std::result::Result<(), String> {
    let addr = address(broker);
    let addrs: Vec<_> = match tokio::net::lookup_host(&addr).await {
        Ok(a) => a.collect(),
        Err(e) => return Err(format!("cannot resolve {addr}: {e}")),
    };
    let mut last = format!("{addr} resolves to no address");
    for a in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(a)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = "connection refused".into();
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no answer within {CONNECT_TIMEOUT:?}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_entries_become_addresses() {
        assert_eq!(address("127.0.0.1:9092"), "127.0.0.1:9092");
        assert_eq!(address("SSL://kafka-1:9093"), "kafka-1:9093");
        assert_eq!(address("kafka"), "kafka:9092");
        assert_eq!(address("[::1]:19092"), "[::1]:19092");
        assert_eq!(address("[::1]"), "[::1]:9092");
    }

    #[tokio::test]
    async fn a_closed_port_is_one_actionable_line() {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let kafka = KafkaConfig {
            brokers: format!("127.0.0.1:{port}"),
            ..KafkaConfig::default()
        };
        let msg = brokers(&kafka).await.unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "cannot reach the Kafka broker at 127.0.0.1:{port} (kafka.brokers): connection refused"
            )
        );
    }

    #[tokio::test]
    async fn one_listening_broker_is_enough() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = l.local_addr().unwrap().port();
        let kafka = KafkaConfig {
            brokers: format!("127.0.0.1:1,127.0.0.1:{open}"),
            ..KafkaConfig::default()
        };
        brokers(&kafka).await.unwrap();
    }
}
