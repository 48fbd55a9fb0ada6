//! The relay's side: claim committed rows bucket by bucket, then delete what was shipped.

use auditlog_event::Prepared;
use uuid::Uuid;

use crate::error::Error;

/// One outbox row as the relay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Its number in its workspace's sequence (commit order, no gaps).
    pub seq: i64,
    /// The event exactly as it was written (`workspace_id`, `event_id`, `event_type`, JSON).
    pub prepared: Prepared,
}

/// An outbox database, PostgreSQL or MySQL/MariaDB, chosen by the URL's scheme.
#[derive(Debug, Clone)]
pub enum Outbox {
    /// `postgres://` or `postgresql://`.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// `mysql://` or `mariadb://`.
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

impl Outbox {
    /// Connects a pool of at most `max_connections` to `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, Error> {
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        match scheme {
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => sqlx::postgres::PgPoolOptions::new()
                .max_connections(max_connections)
                .connect(url)
                .await
                .map(Self::Postgres)
                .map_err(Error::db("connect")),
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => {
                let url = format!("mysql{}", &url[scheme.len()..]);
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(max_connections)
                    // A claim's range deletes take no gap locks that would hold up writers.
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                                .execute(conn)
                                .await
                                .map(drop)
                        })
                    })
                    .connect(&url)
                    .await
                    .map(Self::MySql)
                    .map_err(Error::db("connect"))
            }
            _ => Err(Error::Url(redact(url))),
        }
    }

    /// Runs the migration of this database kind (idempotent).
    pub async fn migrate(&self) -> Result<(), Error> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(Error::db("connect"))?;
                crate::postgres::migrate(&mut conn).await
            }
            #[cfg(feature = "mysql")]
            Self::MySql(pool) => {
                let mut conn = pool.acquire().await.map_err(Error::db("connect"))?;
                crate::mysql::migrate(&mut conn).await
            }
        }
        .map_err(Error::db("migrate"))
    }

    /// Starts a claim: one transaction that locks every bucket no other relay holds (at most
    /// `max_buckets`; `SKIP LOCKED`) and reads at most `limit` of their rows in
    /// `(workspace_id, seq)` order. An empty claim has no rows (and holds nothing once dropped).
    ///
    /// Only buckets that have rows are locked, in bucket order. Three statements on
    /// PostgreSQL (`BEGIN`, the bucket lock, the read), four on MySQL (the candidate buckets
    /// are read before they are locked).
    pub async fn claim(&self, limit: usize, max_buckets: usize) -> Result<Claim, Error> {
        let max_buckets = max_buckets.min(crate::BUCKETS as usize) as i64;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if limit == 0 || max_buckets == 0 {
            return Ok(Claim::empty());
        }
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => claim_postgres(pool, limit, max_buckets).await,
            #[cfg(feature = "mysql")]
            Self::MySql(pool) => claim_mysql(pool, limit, max_buckets).await,
        }
    }

    /// Rows in the outbox now (a metric: the relay's backlog).
    pub async fn len(&self) -> Result<u64, Error> {
        const SQL: &str = "SELECT COUNT(*) FROM auditlog_outbox";
        let n: i64 = match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await,
            #[cfg(feature = "mysql")]
            Self::MySql(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await,
        }
        .map_err(Error::db("count rows"))?;
        Ok(n.max(0) as u64)
    }

    /// Whether the outbox has no rows now (cheaper than [`Outbox::len`] on a long backlog).
    pub async fn is_empty(&self) -> Result<bool, Error> {
        const SQL: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM auditlog_outbox LIMIT 1) AS t";
        let n: i64 = match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await,
            #[cfg(feature = "mysql")]
            Self::MySql(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await,
        }
        .map_err(Error::db("check for rows"))?;
        Ok(n == 0)
    }

    /// Whether this is PostgreSQL (which can `LISTEN` for [`crate::NOTIFY_CHANNEL`]).
    pub fn is_postgres(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => true,
            #[cfg(feature = "mysql")]
            Self::MySql(_) => false,
        }
    }
}

/// `url` without its password (for the error message).
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let user = &url[s + 3..at];
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{}://{user}:***{}", &url[..s], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(feature = "postgres")]
async fn claim_postgres(pool: &sqlx::PgPool, limit: i64, max_buckets: i64) -> Result<Claim, Error> {
    let mut tx = pool.begin().await.map_err(Error::db("begin a claim"))?;
    let buckets: Vec<i16> = sqlx::query_scalar(
        "SELECT b.bucket FROM auditlog_outbox_bucket b \
         WHERE EXISTS (SELECT 1 FROM auditlog_outbox o WHERE o.bucket = b.bucket) \
         ORDER BY b.bucket LIMIT $1 FOR UPDATE OF b SKIP LOCKED",
    )
    .bind(max_buckets)
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::db("lock buckets"))?;
    if buckets.is_empty() {
        return Ok(Claim::empty());
    }
    let rows: Vec<(String, i64, Uuid, String, Vec<u8>)> = sqlx::query_as(
        "SELECT workspace_id, seq, event_id, event_type, body FROM auditlog_outbox \
         WHERE bucket = ANY($1) ORDER BY workspace_id, seq LIMIT $2",
    )
    .bind(&buckets)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::db("read claimed rows"))?;
    let rows = rows
        .into_iter()
        .map(
            |(workspace_id, seq, event_id, event_type, json)| OutboxRow {
                seq,
                prepared: Prepared {
                    event_id,
                    workspace_id,
                    event_type,
                    json,
                },
            },
        )
        .collect();
    Ok(Claim::holding(rows, ClaimTx::Postgres(tx)))
}

#[cfg(feature = "mysql")]
async fn claim_mysql(pool: &sqlx::MySqlPool, limit: i64, max_buckets: i64) -> Result<Claim, Error> {
    use sqlx::{MySql, QueryBuilder};
    let mut tx = pool.begin().await.map_err(Error::db("begin a claim"))?;
    let candidates: Vec<i16> = sqlx::query_scalar(
        "SELECT b.bucket FROM auditlog_outbox_bucket b \
         WHERE EXISTS (SELECT 1 FROM auditlog_outbox o WHERE o.bucket = b.bucket)",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::db("find buckets with rows"))?;
    if candidates.is_empty() {
        return Ok(Claim::empty());
    }
    let mut lock =
        QueryBuilder::<MySql>::new("SELECT bucket FROM auditlog_outbox_bucket WHERE bucket IN (");
    let mut list = lock.separated(", ");
    for b in &candidates {
        list.push_bind(*b);
    }
    lock.push(") ORDER BY bucket LIMIT ");
    lock.push_bind(max_buckets);
    lock.push(" FOR UPDATE SKIP LOCKED");
    let buckets: Vec<i16> = lock
        .build_query_scalar()
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::db("lock buckets"))?;
    if buckets.is_empty() {
        return Ok(Claim::empty());
    }
    let mut read = QueryBuilder::<MySql>::new(
        "SELECT workspace_id, seq, event_id, event_type, body FROM auditlog_outbox \
         WHERE bucket IN (",
    );
    let mut list = read.separated(", ");
    for b in &buckets {
        list.push_bind(*b);
    }
    read.push(") ORDER BY workspace_id, seq LIMIT ");
    read.push_bind(limit);
    // utf8mb4_bin columns come back as VARBINARY: read bytes, check they are UTF-8.
    /// workspace_id, seq, event_id, event_type, body.
    type Row = (Vec<u8>, i64, String, Vec<u8>, Vec<u8>);
    let rows: Vec<Row> = read
        .build_query_as()
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::db("read claimed rows"))?;
    let rows = rows
        .into_iter()
        .map(|(workspace_id, seq, event_id, event_type, json)| {
            let text = |column: &str, bytes: Vec<u8>, workspace_id: &str| {
                String::from_utf8(bytes).map_err(|_| Error::BadRow {
                    workspace_id: workspace_id.to_owned(),
                    seq,
                    reason: format!("{column} is not UTF-8"),
                })
            };
            let workspace_id = text(
                "workspace_id",
                workspace_id.clone(),
                &String::from_utf8_lossy(&workspace_id),
            )?;
            let event_type = text("event_type", event_type, &workspace_id)?;
            let event_id = Uuid::parse_str(&event_id).map_err(|e| Error::BadRow {
                workspace_id: workspace_id.clone(),
                seq,
                reason: format!("event_id {event_id:?}: {e}"),
            })?;
            Ok(OutboxRow {
                seq,
                prepared: Prepared {
                    event_id,
                    workspace_id,
                    event_type,
                    json,
                },
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Claim::holding(rows, ClaimTx::MySql(tx)))
}

/// Rows claimed by one relay: the buckets stay locked until [`Claim::finish`] or drop
/// (rollback: nothing deleted, another relay or the next claim ships them again).
pub struct Claim {
    /// The rows, in `(workspace_id, seq)` order.
    pub rows: Vec<OutboxRow>,
    /// The open transaction holding the bucket locks (private: finish or drop it).
    tx: ClaimTx,
}

enum ClaimTx {
    None,
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl Claim {
    /// No rows, nothing held.
    fn empty() -> Self {
        Self {
            rows: Vec::new(),
            tx: ClaimTx::None,
        }
    }

    /// `rows` read in `tx`; a claim without rows releases its buckets at once.
    fn holding(rows: Vec<OutboxRow>, tx: ClaimTx) -> Self {
        if rows.is_empty() {
            return Self::empty(); // dropping `tx` rolls it back
        }
        Self { rows, tx }
    }

    /// Deletes the rows the broker acknowledged and commits, releasing the buckets.
    /// `delivered[i]` says whether `rows[i]` was acknowledged; per workspace only the
    /// acknowledged rows *before its first failure* are deleted (a later row goes out again
    /// after the failed one, so the workspace's order holds). Returns the rows deleted.
    ///
    /// One `DELETE` of per-workspace `seq` ranges (on MySQL one per 2000 workspaces), then
    /// `COMMIT`. A missing `delivered` entry counts as not delivered.
    pub async fn finish(self, delivered: &[bool]) -> Result<u64, Error> {
        let ranges = crate::plan::acknowledged_prefixes(&self.rows, delivered);
        match self.tx {
            ClaimTx::None => Ok(0),
            #[cfg(feature = "postgres")]
            ClaimTx::Postgres(mut tx) => {
                let deleted = if ranges.is_empty() {
                    0
                } else {
                    let ws: Vec<&str> = ranges.iter().map(|r| r.workspace_id.as_str()).collect();
                    let first: Vec<i64> = ranges.iter().map(|r| r.first).collect();
                    let last: Vec<i64> = ranges.iter().map(|r| r.last).collect();
                    sqlx::query(
                        "DELETE FROM auditlog_outbox o \
                         USING unnest($1::text[], $2::bigint[], $3::bigint[]) AS d(w, lo, hi) \
                         WHERE o.workspace_id = d.w AND o.seq BETWEEN d.lo AND d.hi",
                    )
                    .bind(&ws)
                    .bind(&first)
                    .bind(&last)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::db("delete shipped rows"))?
                    .rows_affected()
                };
                tx.commit().await.map_err(Error::db("commit a claim"))?;
                Ok(deleted)
            }
            #[cfg(feature = "mysql")]
            ClaimTx::MySql(mut tx) => {
                let mut deleted = 0;
                for chunk in ranges.chunks(crate::mysql::ROWS_PER_STATEMENT) {
                    let mut del = sqlx::QueryBuilder::<sqlx::MySql>::new(
                        "DELETE FROM auditlog_outbox WHERE ",
                    );
                    let mut or = del.separated(" OR ");
                    for r in chunk {
                        or.push("(workspace_id = ")
                            .push_bind_unseparated(r.workspace_id.as_str())
                            .push_unseparated(" AND seq BETWEEN ")
                            .push_bind_unseparated(r.first)
                            .push_unseparated(" AND ")
                            .push_bind_unseparated(r.last)
                            .push_unseparated(")");
                    }
                    deleted += del
                        .build()
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::db("delete shipped rows"))?
                        .rows_affected();
                }
                tx.commit().await.map_err(Error::db("commit a claim"))?;
                Ok(deleted)
            }
        }
    }
}
