//! One round: claim -> publish every row (pipelined) -> wait for every acknowledgement ->
//! delete what was acknowledged and commit.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use auditlog_outbox::{Claim, Outbox};
use auditlog_producer::{EmitError, Producer};

use crate::metrics as m;

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows acknowledged and deleted.
    pub deleted: u64,
}

/// Why a round did not ship everything it claimed.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// Claiming or deleting failed: nothing of this round was deleted.
    #[error(transparent)]
    Database(#[from] auditlog_outbox::Error),
    /// Rows were not acknowledged (broker down, timeouts): the acknowledged prefix of each
    /// workspace was deleted, the rest goes out again.
    #[error("{failed} of {claimed} rows not acknowledged by the broker: {first}")]
    Broker {
        /// Rows claimed.
        claimed: usize,
        /// Rows not acknowledged.
        failed: usize,
        /// The first failure.
        first: EmitError,
    },
    /// The client refused a row as such (larger than the broker accepts): its workspace stops
    /// there until the row is removed by hand.
    #[error("the Kafka client refused outbox row {workspace_id}/{seq}: {error}")]
    Rejected {
        /// Its workspace.
        workspace_id: String,
        /// Its sequence number.
        seq: i64,
        /// The client's answer.
        error: EmitError,
    },
}

impl ShipError {
    /// The `kind` label of `auditlog_relay_failures_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            ShipError::Database(_) => "database",
            ShipError::Broker { .. } => "broker",
            ShipError::Rejected { .. } => "rejected",
        }
    }
}

/// Claims at most `limit` rows of at most `max_buckets` buckets and ships them.
pub async fn round(
    outbox: &Outbox,
    producer: &Producer,
    limit: usize,
    max_buckets: usize,
) -> Result<Round, ShipError> {
    let claim = outbox.claim(limit, max_buckets).await?;
    if claim.rows.is_empty() {
        return Ok(Round::default());
    }
    let started = Instant::now();
    let claimed = claim.rows.len();
    let (delivered, failure) = publish(&claim, producer).await;
    let acked = delivered.iter().filter(|d| **d).count();
    let deleted = claim.finish(&delivered).await.inspect_err(|_| {
        metrics::counter!(m::REPUBLISHED).increment(acked as u64);
    })?;
    metrics::counter!(m::REPUBLISHED).increment((acked as u64).saturating_sub(deleted));
    metrics::counter!(m::SHIPPED).increment(deleted);
    metrics::histogram!(m::BATCH_DURATION).record(started.elapsed().as_secs_f64());
    metrics::histogram!(m::BATCH_ROWS).record(claimed as f64);
    match failure {
        None => Ok(Round { claimed, deleted }),
        Some(Failure::Rejected {
            workspace_id,
            seq,
            error,
        }) => Err(ShipError::Rejected {
            workspace_id,
            seq,
            error,
        }),
        Some(Failure::Broker(first)) => Err(ShipError::Broker {
            claimed,
            failed: claimed - acked,
            first,
        }),
    }
}

enum Failure {
    Rejected {
        workspace_id: String,
        seq: i64,
        error: EmitError,
    },
    Broker(EmitError),
}

/// Enqueues every row in order without awaiting each one (a full buffer waits for the oldest
/// delivery), then awaits them all. `delivered[i]` says whether `rows[i]` was acknowledged.
/// After a workspace's row could not be enqueued, its later rows are not sent (they would
/// overtake it in the topic); they stay in the outbox.
async fn publish(claim: &Claim, producer: &Producer) -> (Vec<bool>, Option<Failure>) {
    let rows = &claim.rows;
    let mut delivered = vec![false; rows.len()];
    let mut failure = None;
    let mut stopped: HashSet<&str> = HashSet::new();
    let mut pending = VecDeque::new();
    for (i, row) in rows.iter().enumerate() {
        let ws = row.prepared.workspace_id.as_str();
        if stopped.contains(ws) {
            continue;
        }
        loop {
            match producer.enqueue_prepared(&row.prepared) {
                Ok(fut) => {
                    pending.push_back((i, fut));
                    break;
                }
                Err(EmitError::QueueFull { .. }) => match pending.pop_front() {
                    Some((j, fut)) => settle(&mut delivered, &mut failure, j, fut.await),
                    // Full with nothing of ours in flight: someone else's events; give the
                    // client a moment.
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                },
                Err(error) => {
                    tracing::error!(
                        workspace_id = ws,
                        seq = row.seq,
                        event_id = %row.prepared.event_id,
                        %error,
                        "the Kafka client refused an outbox row; its workspace waits behind it"
                    );
                    stopped.insert(ws);
                    if failure.is_none() {
                        failure = Some(Failure::Rejected {
                            workspace_id: ws.to_owned(),
                            seq: row.seq,
                            error,
                        });
                    }
                    break;
                }
            }
        }
    }
    for (j, fut) in pending {
        settle(&mut delivered, &mut failure, j, fut.await);
    }
    (delivered, failure)
}

fn settle(
    delivered: &mut [bool],
    failure: &mut Option<Failure>,
    i: usize,
    outcome: Result<auditlog_producer::Delivery, EmitError>,
) {
    match outcome {
        Ok(_) => delivered[i] = true,
        Err(e) => {
            if failure.is_none() {
                *failure = Some(Failure::Broker(e));
            }
        }
    }
}
