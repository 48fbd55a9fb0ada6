//! The feed reads (`Reader::feed_page`, `feed_start`, `feed_lag`) and the change `Notifier`
//! against a real ClickHouse (the test stack), each test in its own database. Rows are seeded
//! as the consumer writes them, with explicit Kafka partitions and offsets.
//! Modules: following, dedup, filters, partitions, starts, lag, notifier.

mod common;

/// "Within a second" (200 ms polls plus a page read) measured on a CI machine running many
/// tests at once: up to 2 s.
const LOADED_MACHINE_SLACK: std::time::Duration = std::time::Duration::from_secs(2);

use std::collections::HashSet;
use std::time::{Duration, Instant};

use auditlog_query::feed::Notifier;
use auditlog_query::params::Params;
use auditlog_query::{Dedup, Filter, Reader};
use auditlog_store::feed::{FeedPosition, FeedStart};
use common::*;

const HOUR_MS: i64 = 3_600_000;

fn reader(h: &Harness) -> Reader {
    Reader::new(h.client.clone(), Dedup::LimitBy, Duration::from_secs(30))
}

/// Follows the feed from `pos` until caught up; returns the event ids in order, every
/// position handed out (the cursor after each page), and the final position.
async fn follow(
    r: &Reader,
    ws: &str,
    f: &Filter,
    mut pos: FeedPosition,
    limit: u32,
) -> (Vec<String>, Vec<FeedPosition>, FeedPosition) {
    let mut ids = Vec::new();
    let mut positions = Vec::new();
    for _ in 0..10_000 {
        let page = r.feed_page(ws, f, &pos, limit).await.unwrap();
        assert!(page.items.len() <= limit as usize);
        for it in &page.items {
            assert!(
                pos.is_after(it.partition, it.offset),
                "an item at or before the cursor"
            );
            assert_eq!(it.event.workspace_id, ws);
            ids.push(it.event.id.clone());
        }
        pos = page.next.clone();
        positions.push(pos.clone());
        if page.caught_up {
            return (ids, positions, pos);
        }
    }
    panic!("the feed never caught up");
}

fn filter(q: &str) -> Filter {
    Filter::from_params(&Params::parse(Some(q)).unwrap()).unwrap()
}

// ---- following -----------------------------------------------------------------------------

#[tokio::test]
async fn late_events_between_polls_are_returned_exactly_once_from_every_cursor() {
    let h = Harness::new("feed_late").await;
    let r = reader(&h);
    let now = now_ms();
    // Batch 1: 50 rows in offset order, times in order; noise of another workspace between.
    let mut rows: Vec<Seed> = (0..50)
        .map(|i| at("ws_a", 0, i * 2, now - 1000 + i))
        .collect();
    rows.extend((0..50).map(|i| at("ws_b", 0, i * 2 + 1, now)));
    h.seed(&rows).await;
    let (first, mut positions, pos) =
        follow(&r, "ws_a", &Filter::default(), FeedPosition::beginning(), 7).await;
    assert_eq!(first.len(), 50);
    // Batch 2, between polls: events whose times are hours in the past (a consumer backlog, a
    // producer clock behind), at later offsets.
    let late: Vec<Seed> = (0..30)
        .map(|i| at("ws_a", 0, 200 + i, now - 5 * HOUR_MS - i))
        .collect();
    h.seed(&late).await;
    // And a third batch mixing new and late ones.
    let mixed: Vec<Seed> = (0..30)
        .map(|i| {
            at(
                "ws_a",
                0,
                300 + i,
                if i % 2 == 0 {
                    now + i
                } else {
                    now - 30 * HOUR_MS
                },
            )
        })
        .collect();
    h.seed(&mixed).await;
    let (second, more, end) = follow(&r, "ws_a", &Filter::default(), pos.clone(), 7).await;
    positions.extend(more);
    let expected: Vec<String> = late
        .iter()
        .chain(&mixed)
        .map(|s| s.event_id.to_string())
        .collect();
    assert_eq!(second, expected, "the late rows, in offset order, once");
    let mut all = first.clone();
    all.extend(second);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 110);
    assert_eq!(end.offsets.get(&0), Some(&329));
    // Resuming from EVERY cursor of the run returns exactly the rest: nothing lost, nothing
    // repeated.
    for (i, p) in positions.iter().enumerate() {
        let (rest, _, _) = follow(&r, "ws_a", &Filter::default(), p.clone(), 11).await;
        let delivered = all
            .iter()
            .take_while(|id| {
                let s = rows
                    .iter()
                    .chain(&late)
                    .chain(&mixed)
                    .find(|s| s.event_id.to_string() == **id)
                    .unwrap();
                !p.is_after(s.kafka_partition, s.kafka_offset)
            })
            .count();
        assert_eq!(rest, all[delivered..], "resuming from cursor {i} ({p:?})");
    }
}

#[tokio::test]
async fn sparse_and_dense_workspaces_are_followed_through_every_scan_window() {
    let h = Harness::new("feed_sparse").await;
    let r = reader(&h);
    let now = now_ms();
    // Offsets 100 apart (a workspace with 1% of its partition), then 1,000 apart, then dense:
    // the page windows (4 and 256 offsets per row of the page) and the full scan all serve.
    let rows: Vec<Seed> = (0..20)
        .map(|i| at("ws", 0, i * 100, now + i))
        .chain((0..5).map(|i| at("ws", 0, 10_000 + i * 1000, now + 100 + i)))
        .chain((0..20).map(|i| at("ws", 0, 20_000 + i, now + 200 + i)))
        .collect();
    h.seed(&rows).await;
    let want: Vec<String> = rows.iter().map(|s| s.event_id.to_string()).collect();
    for limit in [1, 2, 3, 7, 50] {
        let (got, _, end) = follow(
            &r,
            "ws",
            &Filter::default(),
            FeedPosition::beginning(),
            limit,
        )
        .await;
        assert_eq!(got, want, "limit {limit}");
        assert_eq!(end.offsets.get(&0), Some(&20_019));
    }
}

// ---- dedup ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_re_emitted_event_at_a_later_offset_is_delivered_once() {
    let h = Harness::new("feed_dup").await;
    let r = reader(&h);
    // No merge may collapse the copies during the test (a merge keeps the later copy, which
    // the feed would then deliver again: the documented caveat, checked end to end).
    h.client
        .query(&format!("SYSTEM STOP MERGES {}.events", h.ch.database))
        .execute()
        .await
        .unwrap();
    let now = now_ms();
    let rows: Vec<Seed> = (0..10).map(|i| at("ws", 0, i, now + i)).collect();
    h.seed(&rows).await;
    // Read the first 5, then the producer re-emits row 2 (already delivered) and row 7 (not yet)
    // at later offsets; row 8 is re-emitted twice in the same later batch.
    let page = r
        .feed_page("ws", &Filter::default(), &FeedPosition::beginning(), 5)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 5);
    let copy = |s: &Seed, o: i64| {
        let mut c = s.clone();
        c.kafka_offset = o;
        c
    };
    h.seed(&[
        copy(&rows[2], 20),
        copy(&rows[7], 21),
        copy(&rows[8], 22),
        copy(&rows[8], 23),
    ])
    .await;
    let (rest, _, end) = follow(&r, "ws", &Filter::default(), page.next.clone(), 3).await;
    let want: Vec<String> = rows[5..].iter().map(|s| s.event_id.to_string()).collect();
    assert_eq!(rest, want, "each event once, at its first offset");
    assert_eq!(
        end.offsets.get(&0),
        Some(&23),
        "duplicates are skipped, not re-read"
    );
    // From the beginning, in pages of 1 (duplicates in separate pages).
    let (all, _, _) = follow(&r, "ws", &Filter::default(), FeedPosition::beginning(), 1).await;
    let want: Vec<String> = rows.iter().map(|s| s.event_id.to_string()).collect();
    assert_eq!(all, want);
}

// ---- filters -------------------------------------------------------------------------------

#[tokio::test]
async fn filters_narrow_the_feed_and_the_position_moves_past_filtered_rows() {
    let h = Harness::new("feed_filter").await;
    let r = reader(&h);
    let now = now_ms();
    let rows: Vec<Seed> = (0..40)
        .map(|i| {
            let mut s = at("ws", 0, i, now + i);
            s.event = if i % 4 == 0 {
                "key.delete"
            } else {
                "key.create"
            }
            .into();
            s.actor_id = format!("actor_{}", i % 2);
            s
        })
        .collect();
    h.seed(&rows).await;
    let f = filter("event=key.delete");
    let (got, _, end) = follow(&r, "ws", &f, FeedPosition::beginning(), 3).await;
    let want: Vec<String> = rows
        .iter()
        .filter(|s| s.event == "key.delete")
        .map(|s| s.event_id.to_string())
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        end.offsets.get(&0),
        Some(&39),
        "the filtered-out tail is covered"
    );
    // A filter matching nothing still moves the position to the end in one page.
    let page = r
        .feed_page(
            "ws",
            &filter("actor_id=nobody"),
            &FeedPosition::beginning(),
            5,
        )
        .await
        .unwrap();
    assert!(page.items.is_empty() && page.caught_up);
    assert_eq!(page.next.offsets.get(&0), Some(&39));
    // Two filters together, as the list combines them.
    let (got, _, _) = follow(
        &r,
        "ws",
        &filter("event=key.delete&actor_id=actor_0"),
        FeedPosition::beginning(),
        100,
    )
    .await;
    assert_eq!(got.len(), 10);
}

#[tokio::test]
async fn retention_applies_as_in_the_list() {
    let h = Harness::new("feed_retention").await;
    let r = reader(&h);
    let now = now_ms();
    // Free plan: 7 days. A row 8 days old is beyond retention even when it arrives late.
    h.seed(&[at("ws", 0, 0, now - 8 * DAY_MS), at("ws", 0, 1, now)])
        .await;
    let (got, _, end) = follow(&r, "ws", &Filter::default(), FeedPosition::beginning(), 10).await;
    assert_eq!(got.len(), 1);
    assert_eq!(end.offsets.get(&0), Some(&1));
}

// ---- partitions ----------------------------------------------------------------------------

#[tokio::test]
async fn a_workspace_moving_to_another_partition_is_followed_without_gaps() {
    let h = Harness::new("feed_parts").await;
    let r = reader(&h);
    let now = now_ms();
    let before: Vec<Seed> = (0..20).map(|i| at("ws", 3, 100 + i, now + i)).collect();
    h.seed(&before).await;
    let (got, _, pos) = follow(&r, "ws", &Filter::default(), FeedPosition::beginning(), 6).await;
    assert_eq!(got.len(), 20);
    assert_eq!(pos.offsets.keys().copied().collect::<Vec<_>>(), vec![3]);
    // The topic grew: the workspace's new events land in partition 7 (offsets start low) and
    // partition 1, while a straggler still arrives in partition 3.
    let after: Vec<Seed> = (0..10)
        .map(|i| at("ws", 7, i, now + 100 + i))
        .chain((0..5).map(|i| at("ws", 1, 50 + i, now + 200 + i)))
        .chain([at("ws", 3, 500, now - HOUR_MS)])
        .collect();
    h.seed(&after).await;
    let (got, _, end) = follow(&r, "ws", &Filter::default(), pos, 4).await;
    assert_eq!(got.len(), 16);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 16);
    // In offset order within each partition (the order across partitions is not part of the
    // guarantee: pages window each partition on its own).
    for p in [1, 3, 7] {
        let mut want: Vec<&Seed> = after.iter().filter(|s| s.kafka_partition == p).collect();
        want.sort_by_key(|s| s.kafka_offset);
        let want: Vec<String> = want.iter().map(|s| s.event_id.to_string()).collect();
        let got_p: Vec<String> = got.iter().filter(|id| want.contains(id)).cloned().collect();
        assert_eq!(got_p, want, "partition {p}");
    }
    assert_eq!(
        end.offsets.into_iter().collect::<Vec<_>>(),
        vec![(1, 54), (3, 500), (7, 9)]
    );
}

// ---- starts --------------------------------------------------------------------------------

#[tokio::test]
async fn starts_from_the_beginning_now_and_a_store_time() {
    let h = Harness::new("feed_start").await;
    let r = reader(&h);
    let now = now_ms();
    assert_eq!(
        r.feed_start("ws", FeedStart::Now).await.unwrap(),
        FeedPosition::beginning()
    );
    h.seed(&(0..5).map(|i| at("ws", 0, i, now + i)).collect::<Vec<_>>())
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let between = now_ms();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let newer: Vec<Seed> = (0..3)
        .map(|i| at("ws", 0, 10 + i, now - HOUR_MS))
        .chain([at("ws", 2, 0, now)])
        .collect();
    h.seed(&newer).await;
    assert_eq!(
        r.feed_start("ws", FeedStart::Beginning).await.unwrap(),
        FeedPosition::beginning()
    );
    let now_pos = r.feed_start("ws", FeedStart::Now).await.unwrap();
    assert_eq!(
        now_pos.offsets.into_iter().collect::<Vec<_>>(),
        vec![(0, 12), (2, 0)]
    );
    // By store time: the rows stored after `between` (event times an hour back included); the
    // partition whose rows are all newer starts at nothing.
    let t = r.feed_start("ws", FeedStart::Time(between)).await.unwrap();
    assert_eq!(t.offsets.into_iter().collect::<Vec<_>>(), vec![(0, 4)]);
    let (got, _, _) = follow(
        &r,
        "ws",
        &Filter::default(),
        r.feed_start("ws", FeedStart::Time(between)).await.unwrap(),
        10,
    )
    .await;
    assert_eq!(
        got,
        newer
            .iter()
            .map(|s| s.event_id.to_string())
            .collect::<Vec<_>>()
    );
    let (got, _, _) = follow(
        &r,
        "ws",
        &Filter::default(),
        r.feed_start("ws", FeedStart::Now).await.unwrap(),
        10,
    )
    .await;
    assert!(got.is_empty());
}

// ---- lag -----------------------------------------------------------------------------------

#[tokio::test]
async fn lag_counts_the_matching_rows_after_a_position_and_their_oldest_store_time() {
    let h = Harness::new("feed_lag").await;
    let r = reader(&h);
    let now = now_ms();
    let rows: Vec<Seed> = (0..10)
        .map(|i| {
            let mut s = at("ws", 0, i, now + i);
            if i >= 6 {
                s.event = "key.delete".into();
            }
            s
        })
        .collect();
    h.seed(&rows).await;
    let f = Filter::default();
    let (n, oldest) = r
        .feed_lag("ws", &f, &FeedPosition::beginning())
        .await
        .unwrap();
    assert_eq!(n, 10);
    let oldest = oldest.unwrap();
    assert!((oldest - now_ms()).abs() < 60_000, "{oldest}");
    let pos = FeedPosition {
        offsets: [(0, 7)].into(),
    };
    assert_eq!(r.feed_lag("ws", &f, &pos).await.unwrap().0, 2);
    assert_eq!(
        r.feed_lag(
            "ws",
            &filter("event=key.delete"),
            &FeedPosition::beginning()
        )
        .await
        .unwrap()
        .0,
        4
    );
    let done = FeedPosition {
        offsets: [(0, 9)].into(),
    };
    assert_eq!(r.feed_lag("ws", &f, &done).await.unwrap(), (0, None));
}

// ---- notifier ------------------------------------------------------------------------------

#[tokio::test]
async fn the_notifier_wakes_waiters_within_a_second_and_times_out_otherwise() {
    let h = Harness::new("feed_notify").await;
    let n = Notifier::new(h.client.clone());
    let now = now_ms();
    h.seed(&[at("ws", 0, 0, now)]).await;
    let pos = FeedPosition {
        offsets: [(0, 0)].into(),
    };
    // Nothing new: both forms time out.
    let t = Instant::now();
    assert!(
        !n.changed_since("ws", &pos, Duration::from_millis(700))
            .await
    );
    assert!(t.elapsed() >= Duration::from_millis(700));
    assert!(!n.changed("ws", Duration::from_millis(500)).await);
    // A row already after the position: at once.
    let t = Instant::now();
    assert!(
        n.changed_since("ws", &FeedPosition::beginning(), Duration::from_secs(5))
            .await
    );
    assert!(t.elapsed() < LOADED_MACHINE_SLACK);
    // New rows while waiting (another workspace's rows do not count).
    for waiter in ["since", "changed"] {
        let inserted = {
            let client = h.client.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(400)).await;
                let token = format!("other:{}", uuid::Uuid::now_v7());
                auditlog_store::events::insert(&client, &[at("ws_other", 0, 1, now_ms())], &token)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(400)).await;
                let row = at("ws", 0, now_ms(), now_ms());
                let token = format!("ws:{}", uuid::Uuid::now_v7());
                auditlog_store::events::insert(&client, &[row], &token)
                    .await
                    .unwrap();
                Instant::now()
            })
        };
        let woke = match waiter {
            "since" => n.changed_since("ws", &pos, Duration::from_secs(10)).await,
            _ => n.changed("ws", Duration::from_secs(10)).await,
        };
        let at_wake = Instant::now();
        let visible = inserted.await.unwrap();
        assert!(woke, "{waiter}");
        assert!(
            at_wake >= visible - Duration::from_millis(50),
            "{waiter}: woke before the row"
        );
        assert!(
            at_wake - visible < LOADED_MACHINE_SLACK,
            "{waiter}: {:?}",
            at_wake - visible
        );
    }
}
