//! A checksum of what an events table stores, to tell whether two ingestions of the same
//! events (two servers, a cluster and a single server, two consumers) wrote the same rows.

use anyhow::{Context as _, Result};
use auditlog_store::events::EventRow;
use clickhouse::{Client, Row as _};

/// Where a row came from in Kafka: equal only when both sides read the same topic.
const PROVENANCE: [&str; 2] = ["kafka_partition", "kafka_offset"];

/// `sum(cityHash64(<every written column>))` over `table` (`inserted_at` left out: it is the
/// time of the insert), without the Kafka provenance columns unless `provenance`. Equal sums
/// mean equal multisets of rows, short of a hash collision.
pub async fn content_checksum(client: &Client, table: &str, provenance: bool) -> Result<u64> {
    let columns: Vec<&str> = EventRow::COLUMN_NAMES
        .iter()
        .copied()
        .filter(|c| provenance || !PROVENANCE.contains(c))
        .collect();
    let sql = format!(
        "SELECT sum(cityHash64({})) FROM {table}",
        columns.join(", ")
    );
    client
        .query(&sql)
        .fetch_one::<u64>()
        .await
        .with_context(|| format!("checksum of {table}"))
}
