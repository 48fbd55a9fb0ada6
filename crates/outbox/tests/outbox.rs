//! The outbox against real private servers: one PostgreSQL and one MariaDB per test, each
//! scenario in a fresh database of its own. The scenarios are the same for both kinds (the
//! `Tx` wrapper picks the kind's `write`); PostgreSQL's NOTIFY has its own test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use auditlog_event::{Actor, AuditEvent, KnownEvent, Target};
use auditlog_outbox::{bucket_of, Outbox, OutboxRow, WriteError, BUCKETS};
use auditlog_testkit::{MariaDbServer, PostgresServer};
use uuid::Uuid;

fn event(ws: &str, n: usize) -> AuditEvent {
    AuditEvent::builder(ws, KnownEvent::KeyCreate)
        .actor(Actor::user("user_1", "Ada"))
        .target(Target::new("key", format!("key_{n}"), "prod"))
        .description(format!("Ada created key {n}"))
        .build()
        .expect("valid event")
}

/// A transaction of either kind, writing through that kind's functions.
enum Tx {
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
    My(sqlx::Transaction<'static, sqlx::MySql>),
}

impl Tx {
    async fn begin(outbox: &Outbox) -> Result<Self> {
        Ok(match outbox {
            Outbox::Postgres(pool) => Self::Pg(pool.begin().await?),
            Outbox::MySql(pool) => Self::My(pool.begin().await?),
        })
    }

    async fn write(&mut self, e: &AuditEvent) -> Result<Uuid, WriteError> {
        match self {
            Self::Pg(tx) => auditlog_outbox::postgres::write(tx, e).await,
            Self::My(tx) => auditlog_outbox::mysql::write(tx, e).await,
        }
    }

    async fn write_all(&mut self, events: &[AuditEvent]) -> Result<Vec<Uuid>, WriteError> {
        match self {
            Self::Pg(tx) => auditlog_outbox::postgres::write_all(tx, events).await,
            Self::My(tx) => auditlog_outbox::mysql::write_all(tx, events).await,
        }
    }

    async fn commit(self) -> Result<()> {
        match self {
            Self::Pg(tx) => tx.commit().await?,
            Self::My(tx) => tx.commit().await?,
        }
        Ok(())
    }

    async fn rollback(self) -> Result<()> {
        match self {
            Self::Pg(tx) => tx.rollback().await?,
            Self::My(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// Commits one event per entry of `workspaces` (one transaction each).
async fn commit_events(outbox: &Outbox, workspaces: &[&str]) -> Result<Vec<AuditEvent>> {
    let mut out = Vec::new();
    for (n, ws) in workspaces.iter().enumerate() {
        let e = event(ws, n);
        let mut tx = Tx::begin(outbox).await?;
        tx.write(&e).await?;
        tx.commit().await?;
        out.push(e);
    }
    Ok(out)
}

/// Every row now (a claim of everything, finished with nothing acknowledged: its buckets
/// are free again when this returns).
async fn all_rows(outbox: &Outbox) -> Result<Vec<OutboxRow>> {
    let claim = outbox.claim(1_000_000, BUCKETS as usize).await?;
    let rows = claim.rows.clone();
    ensure!(claim.finish(&[]).await? == 0, "finish(&[]) deleted rows");
    Ok(rows)
}

/// Rows are grouped by workspace, each workspace's in increasing `seq`.
fn assert_claim_order(rows: &[OutboxRow]) {
    let keys: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| (r.prepared.workspace_id.as_str(), r.seq))
        .collect();
    let mut seen = BTreeSet::new();
    for w in keys.windows(2) {
        if w[0].0 == w[1].0 {
            assert!(w[0].1 < w[1].1, "sequence order broken: {w:?}");
        } else {
            assert!(seen.insert(w[0].0), "workspace {} not contiguous", w[0].0);
        }
    }
}

async fn rollback_writes_nothing(outbox: &Outbox) -> Result<()> {
    let mut tx = Tx::begin(outbox).await?;
    tx.write(&event("ws_rb", 0)).await?;
    tx.write_all(&[event("ws_rb", 1), event("ws_other", 2)])
        .await?;
    tx.rollback().await?;
    ensure!(outbox.len().await? == 0, "a rolled-back write left rows");
    // The rollback gave its numbers back: the next committed event is number 1.
    commit_events(outbox, &["ws_rb"]).await?;
    let rows = all_rows(outbox).await?;
    ensure!(rows.len() == 1 && rows[0].seq == 1, "rows {rows:?}");
    Ok(())
}

async fn commit_writes_exactly_one_row(outbox: &Outbox) -> Result<()> {
    let e = event("ws_one", 0);
    let mut tx = Tx::begin(outbox).await?;
    let id = tx.write(&e).await?;
    tx.commit().await?;
    ensure!(id == e.event_id, "write returned {id}, not the event's id");
    ensure!(outbox.len().await? == 1, "len {}", outbox.len().await?);
    let rows = all_rows(outbox).await?;
    ensure!(rows.len() == 1, "{} rows", rows.len());
    let expected = e.prepare()?;
    ensure!(
        rows[0].prepared == expected,
        "stored {:?}",
        rows[0].prepared
    );
    ensure!(
        rows[0].prepared.json == e.to_json_bytes(),
        "body differs from the wire form"
    );
    ensure!(rows[0].seq == 1, "seq {}", rows[0].seq);
    Ok(())
}

async fn invalid_events_write_nothing(outbox: &Outbox) -> Result<()> {
    let mut bad = event("ws_bad", 0);
    bad.workspace_id = String::new();
    let mut tx = Tx::begin(outbox).await?;
    match tx.write(&bad).await {
        Err(WriteError::Invalid(e)) => ensure!(e.field == "workspace_id", "field {}", e.field),
        other => anyhow::bail!("an invalid event gave {other:?}"),
    }
    // One invalid event in a batch: none of it is written.
    match tx.write_all(&[event("ws_bad", 1), bad.clone()]).await {
        Err(WriteError::Invalid(e)) => ensure!(e.field == "workspace_id", "field {}", e.field),
        other => anyhow::bail!("a batch with an invalid event gave {other:?}"),
    }
    tx.commit().await?;
    ensure!(outbox.len().await? == 0, "an invalid write left rows");
    Ok(())
}

/// Writers of one workspace that write, wait a random while, then commit: their numbers are
/// 1..=N without gaps, in the order they committed.
async fn one_workspace_numbers_follow_commit_order(outbox: &Outbox) -> Result<()> {
    const WRITERS: usize = 16;
    let committed = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for n in 0..WRITERS {
        let (outbox, committed) = (outbox.clone(), committed.clone());
        tasks.push(tokio::spawn(async move {
            let e = event("ws_order", n);
            let mut tx = Tx::begin(&outbox).await?;
            tx.write(&e).await?;
            tokio::time::sleep(Duration::from_millis(1 + rand_ms(n) % 15)).await;
            tx.commit().await?;
            let position = committed.fetch_add(1, Ordering::SeqCst) + 1;
            anyhow::Ok((e.event_id, position))
        }));
    }
    let mut position_of = BTreeMap::new();
    for t in tasks {
        let (id, position) = t.await??;
        position_of.insert(id, position);
    }
    let rows = all_rows(outbox).await?;
    ensure!(rows.len() == WRITERS, "{} rows", rows.len());
    for (i, row) in rows.iter().enumerate() {
        ensure!(
            row.seq == i as i64 + 1,
            "numbers not dense: {i} has {}",
            row.seq
        );
        let position = position_of[&row.prepared.event_id];
        ensure!(
            position == row.seq,
            "seq {} committed as number {position}",
            row.seq
        );
    }
    // One write_all takes consecutive numbers in its order.
    let batch: Vec<AuditEvent> = (0..5).map(|n| event("ws_order", 100 + n)).collect();
    let mut tx = Tx::begin(outbox).await?;
    tx.write_all(&batch).await?;
    tx.commit().await?;
    let rows = all_rows(outbox).await?;
    for (k, e) in batch.iter().enumerate() {
        let row = &rows[WRITERS + k];
        ensure!(
            row.prepared.event_id == e.event_id && row.seq == (WRITERS + k + 1) as i64,
            "batch row {k}: {row:?}"
        );
    }
    Ok(())
}

/// A little spread without a random-number dependency.
fn rand_ms(n: usize) -> u64 {
    let h = Uuid::new_v4().as_u128() as u64;
    h.wrapping_add(n as u64)
}

/// An open transaction of workspace A holds up a writer of A until it commits, but never a
/// writer of B.
async fn workspaces_do_not_block_each_other(outbox: &Outbox) -> Result<()> {
    let mut a = Tx::begin(outbox).await?;
    a.write(&event("ws_a", 0)).await?;
    let mut b = Tx::begin(outbox).await?;
    tokio::time::timeout(Duration::from_secs(5), b.write(&event("ws_b", 1)))
        .await
        .context("a writer of ws_b waited for one of ws_a")??;
    b.commit().await?;
    let second_a = {
        let outbox = outbox.clone();
        tokio::spawn(async move {
            let mut tx = Tx::begin(&outbox).await?;
            tx.write(&event("ws_a", 2)).await?;
            tx.commit().await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(
        !second_a.is_finished(),
        "a second writer of ws_a did not wait for the first"
    );
    a.commit().await?;
    tokio::time::timeout(Duration::from_secs(5), second_a).await???;
    let rows = all_rows(outbox).await?;
    let seqs: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| (r.prepared.workspace_id.as_str(), r.seq))
        .collect();
    ensure!(seqs == [("ws_a", 1), ("ws_a", 2), ("ws_b", 1)], "{seqs:?}");
    Ok(())
}

/// Workspaces spread over many buckets.
fn spread_workspaces(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("ws_spread_{i}")).collect()
}

async fn claims_never_share_a_bucket(outbox: &Outbox) -> Result<()> {
    let names = spread_workspaces(150);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    commit_events(outbox, &refs).await?;
    let all_buckets: BTreeSet<i16> = names.iter().map(|w| bucket_of(w)).collect();
    let first = outbox.claim(10_000, 5).await?;
    let b1: BTreeSet<i16> = first
        .rows
        .iter()
        .map(|r| bucket_of(&r.prepared.workspace_id))
        .collect();
    ensure!(
        b1.len() == 5,
        "a claim of at most 5 buckets took {}",
        b1.len()
    );
    let second = outbox.claim(10_000, 64).await?;
    let b2: BTreeSet<i16> = second
        .rows
        .iter()
        .map(|r| bucket_of(&r.prepared.workspace_id))
        .collect();
    ensure!(
        b1.is_disjoint(&b2),
        "two claims shared buckets {:?}",
        b1.intersection(&b2)
    );
    ensure!(
        b1.union(&b2).copied().collect::<BTreeSet<_>>() == all_buckets,
        "the two claims did not cover every bucket with rows"
    );
    ensure!(first.rows.len() + second.rows.len() == 150);
    assert_claim_order(&first.rows);
    assert_claim_order(&second.rows);
    // Everything is held: a third claim is empty, and quick.
    let started = std::time::Instant::now();
    let third = outbox.claim(10_000, 64).await?;
    ensure!(
        third.rows.is_empty(),
        "a third claim got {} rows",
        third.rows.len()
    );
    ensure!(
        started.elapsed() < Duration::from_secs(1),
        "an empty claim took {:?}",
        started.elapsed()
    );
    // The limit cuts in (workspace_id, seq) order.
    first.finish(&[]).await?;
    second.finish(&[]).await?;
    let limited = outbox.claim(7, 64).await?;
    ensure!(limited.rows.len() == 7);
    let mut sorted: Vec<&str> = refs.clone();
    sorted.sort_unstable();
    let got: Vec<&str> = limited
        .rows
        .iter()
        .map(|r| r.prepared.workspace_id.as_str())
        .collect();
    ensure!(got == sorted[..7], "limit took {got:?}");
    Ok(())
}

async fn finish_deletes_the_acknowledged_prefix(outbox: &Outbox) -> Result<()> {
    commit_events(outbox, &["ws_f1", "ws_f1", "ws_f1", "ws_f2", "ws_f2"]).await?;
    let claim = outbox.claim(100, 64).await?;
    let keys: Vec<(String, i64)> = claim
        .rows
        .iter()
        .map(|r| (r.prepared.workspace_id.clone(), r.seq))
        .collect();
    ensure!(keys.len() == 5, "{keys:?}");
    // ws_f1: 1 acknowledged, 2 failed, 3 acknowledged (kept); ws_f2: both.
    let deleted = claim.finish(&[true, false, true, true, true]).await?;
    ensure!(deleted == 3, "deleted {deleted}");
    let left: Vec<(String, i64)> = all_rows(outbox)
        .await?
        .iter()
        .map(|r| (r.prepared.workspace_id.clone(), r.seq))
        .collect();
    ensure!(
        left == [("ws_f1".to_string(), 2), ("ws_f1".to_string(), 3)],
        "{left:?}"
    );
    // Everything acknowledged: the outbox is empty, the counters keep going.
    let claim = outbox.claim(100, 64).await?;
    ensure!(claim.finish(&[true, true]).await? == 2);
    ensure!(outbox.len().await? == 0 && outbox.is_empty().await?);
    commit_events(outbox, &["ws_f1"]).await?;
    ensure!(!outbox.is_empty().await?);
    ensure!(all_rows(outbox).await?[0].seq == 4);
    Ok(())
}

async fn a_dropped_claim_deletes_nothing(outbox: &Outbox) -> Result<()> {
    commit_events(outbox, &["ws_d", "ws_d"]).await?;
    let claim = outbox.claim(100, 64).await?;
    ensure!(claim.rows.len() == 2);
    drop(claim);
    ensure!(outbox.len().await? == 2, "a dropped claim deleted rows");
    // Its buckets are free again (the rollback may be sent a moment after the drop).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let again = outbox.claim(100, 64).await?;
        if again.rows.len() == 2 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the buckets stayed locked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn migration_is_idempotent(outbox: &Outbox) -> Result<()> {
    commit_events(outbox, &["ws_m"]).await?;
    let (a, b) = tokio::join!(outbox.migrate(), outbox.migrate());
    a?;
    b?;
    outbox.migrate().await?;
    ensure!(outbox.len().await? == 1, "migrating again lost rows");
    let buckets: i64 = match outbox {
        Outbox::Postgres(pool) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM auditlog_outbox_bucket")
                .fetch_one(pool)
                .await?
        }
        Outbox::MySql(pool) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM auditlog_outbox_bucket")
                .fetch_one(pool)
                .await?
        }
    };
    ensure!(buckets == i64::from(BUCKETS), "{buckets} bucket rows");
    Ok(())
}

/// Runs every scenario, each in a fresh database from `fresh`.
async fn run_scenarios(kind: &str, fresh: impl Fn() -> Result<String>) -> Result<()> {
    macro_rules! scenarios {
        ($($name:ident),* $(,)?) => {
            $(
                let url = fresh()?;
                let outbox = Outbox::connect(&url, 32).await?;
                outbox.migrate().await?;
                $name(&outbox)
                    .await
                    .with_context(|| format!("{kind}: {}", stringify!($name)))?;
            )*
        };
    }
    scenarios!(
        rollback_writes_nothing,
        commit_writes_exactly_one_row,
        invalid_events_write_nothing,
        one_workspace_numbers_follow_commit_order,
        workspaces_do_not_block_each_other,
        claims_never_share_a_bucket,
        finish_deletes_the_acknowledged_prefix,
        a_dropped_claim_deletes_nothing,
        migration_is_idempotent,
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outbox() -> Result<()> {
    let server = PostgresServer::start()?;
    ensure!(Outbox::connect(&server.url(), 2).await?.is_postgres());
    run_scenarios("PostgreSQL", || server.fresh_database("outbox")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_outbox() -> Result<()> {
    let server = MariaDbServer::start()?;
    let outbox = Outbox::connect(&server.url().replacen("mysql", "mariadb", 1), 2).await?;
    ensure!(!outbox.is_postgres());
    run_scenarios("MariaDB", || server.fresh_database("outbox")).await
}

#[tokio::test]
async fn a_url_of_another_kind_is_refused() {
    let err = Outbox::connect("sqlite://x:secret@host/db", 1)
        .await
        .expect_err("sqlite accepted");
    let text = err.to_string();
    assert!(text.contains("must start with postgres://"), "{text}");
    assert!(
        !text.contains("secret"),
        "the password is in the message: {text}"
    );
}

/// PostgreSQL's insert trigger: a NOTIFY arrives when the writer commits, not before, and
/// never for a rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notify_arrives_at_commit_only() -> Result<()> {
    let server = PostgresServer::start()?;
    let outbox = Outbox::connect(&server.url(), 4).await?;
    outbox.migrate().await?;
    let mut listener = sqlx::postgres::PgListener::connect(&server.url()).await?;
    listener.listen(auditlog_outbox::NOTIFY_CHANNEL).await?;
    let quiet = Duration::from_millis(300);

    let mut tx = Tx::begin(&outbox).await?;
    tx.write(&event("ws_n", 0)).await?;
    tx.rollback().await?;
    let got = tokio::time::timeout(quiet, listener.recv()).await;
    ensure!(got.is_err(), "a rollback notified: {got:?}");

    let mut tx = Tx::begin(&outbox).await?;
    tx.write_all(&[event("ws_n", 1), event("ws_n2", 2)]).await?;
    let got = tokio::time::timeout(quiet, listener.recv()).await;
    ensure!(got.is_err(), "notified before the commit: {got:?}");
    tx.commit().await?;
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .context("no NOTIFY after the commit")??;
    ensure!(n.channel() == auditlog_outbox::NOTIFY_CHANNEL);
    Ok(())
}
