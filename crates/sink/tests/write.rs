//! Component tests of the write step: deduplication tokens and the batch journal against the
//! real ClickHouse, isolating refused rows (with a fake writer failing at exact rows, and with a
//! real ClickHouse constraint), and error classification of real ClickHouse errors.

use std::sync::Mutex;

use anyhow::Result;
use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_sink::batch::Batch;
use auditlog_sink::write::{
    classify, dedup_token, insert_isolating, ClickHouseWriter, ErrorKind, WriteError, Writer,
};
use auditlog_store::events::{EventRow, RowContext};

fn rows(n: usize, seed: u64, first_offset: i64) -> Vec<EventRow> {
    let mut s = Synth::new(SynthConfig {
        seed,
        ..SynthConfig::default()
    });
    (0..n)
        .map(|i| {
            EventRow::from_event(
                s.next_event(),
                RowContext {
                    partition: 0,
                    offset: first_offset + i as i64,
                    retention_days: 7,
                },
            )
        })
        .collect()
}

fn batch(rows: Vec<EventRow>) -> Batch {
    Batch {
        first: rows[0].kafka_offset,
        last: rows[rows.len() - 1].kafka_offset,
        bytes: 0,
        recorded: false,
        rows,
    }
}

async fn count(client: &clickhouse::Client, final_: bool) -> Result<u64> {
    let q = if final_ {
        "SELECT count() FROM events FINAL"
    } else {
        "SELECT count() FROM events"
    };
    Ok(client.query(q).fetch_one().await?)
}

#[tokio::test]
async fn a_batch_inserted_twice_with_its_token_is_stored_once() -> Result<()> {
    let ch = auditlog_testkit::fresh_database("sink_token").await?;
    let client = ch.client();
    let writer = ClickHouseWriter::new(client.clone(), "t");
    let b = batch(rows(100, 1, 500));
    let token = dedup_token("t", 0, (b.first, b.last), None);
    writer.insert(&b.rows, &token).await?;
    writer.insert(&b.rows, &token).await?;
    assert_eq!(count(&client, false).await?, 100);
    // Cut differently (another token): duplicates without FINAL, exact with FINAL.
    writer.insert(&b.rows[..50], "t:0:500-549").await?;
    assert_eq!(count(&client, false).await?, 150);
    assert_eq!(count(&client, true).await?, 100);
    Ok(())
}

#[tokio::test]
async fn the_batch_journal_returns_ranges_from_an_offset() -> Result<()> {
    let ch = auditlog_testkit::fresh_database("sink_journal").await?;
    let writer = ClickHouseWriter::new(ch.client(), "topic_a");
    writer.record_cut(1, 0, 9, 10).await?;
    writer.record_cut(1, 10, 12, 3).await?;
    writer.record_cut(1, 10, 12, 3).await?;
    writer.record_cut(2, 0, 99, 100).await?;
    assert_eq!(writer.recorded_cuts(1, 5).await?, vec![(0, 9), (10, 12)]);
    assert_eq!(writer.recorded_cuts(1, 10).await?, vec![(10, 12)]);
    assert_eq!(writer.recorded_cuts(1, 13).await?, vec![]);
    let other = ClickHouseWriter::new(ch.client(), "topic_b");
    assert_eq!(other.recorded_cuts(2, 0).await?, vec![]);
    Ok(())
}

/// Fails every insert containing one of the `bad` offsets, as ClickHouse does for a bad row.
struct FailingAt {
    bad: Vec<i64>,
    inserted: Mutex<Vec<i64>>,
    calls: Mutex<usize>,
}

impl Writer for FailingAt {
    async fn insert(&self, rows: &[EventRow], _token: &str) -> Result<(), WriteError> {
        *self.calls.lock().unwrap() += 1;
        if rows.iter().any(|r| self.bad.contains(&r.kafka_offset)) {
            return Err(WriteError {
                kind: ErrorKind::BadData,
                message: "Code: 469. bad row".into(),
            });
        }
        self.inserted
            .lock()
            .unwrap()
            .extend(rows.iter().map(|r| r.kafka_offset));
        Ok(())
    }
    async fn record_cut(&self, _: i32, _: i64, _: i64, _: usize) -> Result<(), WriteError> {
        Ok(())
    }
    async fn recorded_cuts(&self, _: i32, _: i64) -> Result<Vec<(i64, i64)>, WriteError> {
        Ok(vec![])
    }
}

#[tokio::test]
async fn refused_rows_are_isolated_and_the_rest_inserted_in_order() -> Result<()> {
    let w = FailingAt {
        bad: vec![103, 170, 171],
        inserted: Mutex::default(),
        calls: Mutex::default(),
    };
    let b = batch(rows(100, 2, 100));
    let refused = insert_isolating(&w, "t", 0, &b).await?;
    let refused: Vec<i64> = refused.iter().map(|r| r.offset).collect();
    assert_eq!(refused, vec![103, 170, 171]);
    let inserted = w.inserted.lock().unwrap().clone();
    let expected: Vec<i64> = (100..200)
        .filter(|o| ![103, 170, 171].contains(o))
        .collect();
    assert_eq!(inserted, expected);
    // log2(100) levels, a few bad paths: far fewer calls than rows.
    assert!(
        *w.calls.lock().unwrap() < 40,
        "{} calls",
        w.calls.lock().unwrap()
    );
    Ok(())
}

#[tokio::test]
async fn a_row_refused_by_a_real_constraint_is_isolated() -> Result<()> {
    let ch = auditlog_testkit::fresh_database("sink_refuse").await?;
    let client = ch.client();
    let layout = auditlog_store::Layout::detect(&client)
        .await?
        .expect("migrated");
    client
        .query(&layout.alter_events("ADD CONSTRAINT no_poison CHECK description != 'refuse me'"))
        .execute()
        .await?;
    let mut rs = rows(50, 3, 0);
    rs[17].description = "refuse me".into();
    let b = batch(rs);
    let writer = ClickHouseWriter::new(client.clone(), "t");
    let refused = insert_isolating(&writer, "t", 0, &b).await?;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].offset, 17);
    assert!(
        refused[0].message.contains("469") || refused[0].message.contains("VIOLATED_CONSTRAINT"),
        "{}",
        refused[0].message
    );
    assert_eq!(count(&client, false).await?, 49);
    // Retried as a whole (after a crash): every part is deduplicated.
    insert_isolating(&writer, "t", 0, &b).await?;
    assert_eq!(count(&client, false).await?, 49);
    Ok(())
}

#[tokio::test]
async fn real_clickhouse_errors_are_classified() -> Result<()> {
    // Missing table: an operator fixes it; keep the data and retry.
    let ch = auditlog_testkit::fresh_database("sink_classify").await?;
    let client = ch.client();
    let err = client
        .query("SELECT * FROM no_such_table")
        .fetch_all::<u8>()
        .await
        .unwrap_err();
    assert_eq!(classify(&err), ErrorKind::Retryable);
    // Nothing listening: retryable.
    let down = clickhouse::Client::default().with_url("http://127.0.0.1:9");
    let err = down.query("SELECT 1").fetch_one::<u8>().await.unwrap_err();
    assert_eq!(classify(&err), ErrorKind::Retryable);
    Ok(())
}
