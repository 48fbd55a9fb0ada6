//! The local stack is real: ClickHouse 25.8+ with MergeTree TTL, and a Kafka broker that takes an
//! idempotent acks=all producer and stores a consumer group's offset commits.
//! Runs against the test stack (`STACK_PROFILE=test deploy/local/stack.sh up`, or `tests/run.sh`);
//! fails when it is not running.

use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use auditlog_testkit::{brokers, clickhouse_url, create_topic, unique_name};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// `major.minor` of a ClickHouse version string such as `25.8.2.1`.
fn major_minor(version: &str) -> Result<(u32, u32)> {
    let mut parts = version.split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => bail!("unexpected ClickHouse version {version:?}"),
    }
}

#[test]
fn version_parsing() {
    assert_eq!(major_minor("25.8.2.1").unwrap(), (25, 8));
    assert!(major_minor("garbage").is_err());
}

#[tokio::test]
async fn clickhouse_is_25_8_or_newer_and_applies_a_mergetree_ttl() -> Result<()> {
    let client = clickhouse::Client::default().with_url(clickhouse_url());
    let version: String = client
        .query("SELECT version()")
        .fetch_one()
        .await
        .with_context(|| format!("ClickHouse at {} (is the test stack up?)", clickhouse_url()))?;
    let (major, minor) = major_minor(&version)?;
    ensure!(
        (major, minor) >= (25, 8),
        "ClickHouse {version} is older than 25.8"
    );

    let db = unique_name("stack_ttl");
    client
        .query(&format!("CREATE DATABASE {db}"))
        .execute()
        .await?;
    let client = client.with_database(&db);
    client
        .query(
            "CREATE TABLE t (id UInt64, ts DateTime('UTC'), days UInt32)
             ENGINE = MergeTree ORDER BY id
             TTL ts + toIntervalDay(days) DELETE WHERE days > 0",
        )
        .execute()
        .await
        .context("create a MergeTree table with a TTL")?;
    // 1: expired (10 days old, 7-day retention); 2: within retention; 3: unlimited (0 days).
    client
        .query(
            "INSERT INTO t VALUES
             (1, now() - INTERVAL 10 DAY, 7), (2, now() - INTERVAL 1 DAY, 7),
             (3, now() - INTERVAL 400 DAY, 0)",
        )
        .execute()
        .await?;
    client.query("OPTIMIZE TABLE t FINAL").execute().await?;
    let ids: Vec<u64> = client
        .query("SELECT id FROM t ORDER BY id")
        .fetch_all()
        .await?;
    let ttl: String = client
        .query("SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 't'")
        .fetch_one()
        .await?;
    client
        .query(&format!("DROP DATABASE {db}"))
        .execute()
        .await?;
    assert_eq!(ids, vec![2, 3], "the TTL deletes exactly the expired row");
    assert!(ttl.contains("TTL"), "table definition keeps its TTL: {ttl}");
    Ok(())
}

#[tokio::test]
async fn idempotent_acks_all_message_is_consumed_and_its_commit_read_back() -> Result<()> {
    let topic = unique_name("stack_kafka");
    create_topic(&topic, 3).await?;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()
        .context("producer")?;
    let payload = unique_name("payload");
    let delivery = producer
        .send(
            FutureRecord::to(&topic).key("k").payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .with_context(|| format!("produce to {topic} on {}", brokers()))?;
    let (partition, offset) = (delivery.partition, delivery.offset);

    let group = unique_name("stack_group");
    let consumer: StreamConsumer = group_consumer(&group)?;
    consumer.subscribe(&[&topic])?;
    let consumed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let msg = consumer.recv().await?;
            if msg.payload() == Some(payload.as_bytes()) {
                consumer.commit_message(&msg, CommitMode::Sync)?;
                return Ok::<_, anyhow::Error>((msg.partition(), msg.offset()));
            }
        }
    })
    .await
    .context("no message consumed within 60 s")??;
    assert_eq!(consumed, (partition, offset), "consumed what was produced");
    drop(consumer);

    // A new member of the group asks the broker for the group's committed offset.
    let reader: StreamConsumer = group_consumer(&group)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, partition);
    let committed = reader.committed_offsets(tpl, Duration::from_secs(10))?;
    let stored = committed
        .find_partition(&topic, partition)
        .context("committed offset missing")?
        .offset();
    assert_eq!(
        stored,
        Offset::Offset(offset + 1),
        "commit read back from the broker"
    );
    Ok(())
}

fn group_consumer(group: &str) -> Result<StreamConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("consumer")
}
