//! Emits a few audit events and waits for the broker to acknowledge each one.
//!
//! ```text
//! STACK_PROFILE=test deploy/local/stack.sh up
//! cargo run -p auditlog-producer --example emit -- 127.0.0.1:19092 audit-events
//! ```

use std::time::Duration;

use auditlog_event::{Actor, AuditEvent, KnownEvent, Target};
use auditlog_producer::{KafkaConfig, Producer, ProducerConfig};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let kafka = KafkaConfig {
        brokers: args.next().unwrap_or_else(|| "127.0.0.1:19092".into()),
        topic: args.next().unwrap_or_else(|| "audit-events".into()),
        ..KafkaConfig::default()
    };
    let cfg = ProducerConfig {
        startup_timeout: Duration::from_secs(5),
        ..ProducerConfig::default()
    };
    let producer = Producer::builder(&kafka).config(&cfg).build().await?;

    let alice = Actor::user("user_7h2k", "Alice Chen");
    let create_api = AuditEvent::builder("ws_3f9a2c", KnownEvent::ApiCreate)
        .actor(alice.clone())
        .target(Target::new("api", "api_91ab", "payments"))
        .description("Alice Chen created API 'payments'")
        .remote_ip("203.0.113.7")
        .request(json!({ "name": "payments" }))
        .response(json!({ "apiId": "api_91ab" }))
        .correlation_id("req_5d1e")
        .build()?;
    let create_key = AuditEvent::builder("ws_3f9a2c", KnownEvent::KeyCreate)
        .actor(alice)
        .target(Target::new("api", "api_91ab", "payments"))
        .target(Target::new("key", "key_2c8d", "prod-billing"))
        .description("Alice Chen created key 'prod-billing' in API 'payments'")
        .remote_ip("203.0.113.7")
        .request(json!({ "apiId": "api_91ab", "name": "prod-billing" }))
        .response(json!({ "keyId": "key_2c8d" }))
        .correlation_id("req_5d1e")
        .build()?;
    let failed_verify = AuditEvent::builder("ws_3f9a2c", KnownEvent::KeyVerifyFailed)
        .actor(Actor::root_key("rk_0a1b", "backoffice"))
        .target(Target::new("key", "key_2c8d", "prod-billing"))
        .description("Verification of key 'prod-billing' failed: revoked")
        .failure("revoked")
        .build()?;

    for event in [&create_api, &create_key, &failed_verify] {
        let d = producer.emit(event).await?;
        println!(
            "{} {} -> partition {} offset {} ({:?})",
            event.event, event.event_id, d.partition, d.offset, d.latency
        );
    }
    let report = producer.close(Duration::from_secs(10)).await?;
    anyhow::ensure!(
        report.is_complete(),
        "undelivered: {:?}",
        report.undelivered
    );
    Ok(())
}
