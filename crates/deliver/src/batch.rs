//! Feed items to batches: render each event in the stream's format, then cut consecutive
//! events into batches by the destination's [`Limits`]. Pure functions.

use auditlog_formats::Format;
use auditlog_query::feed::FeedItem;
use auditlog_store::FeedPosition;
use uuid::Uuid;

use crate::destination::{Batch, Limits, Rendered};

/// One event rendered, or why it could not be (a stored row that does not map back).
pub fn render(format: Format, item: &FeedItem) -> Result<Rendered, String> {
    let event = &item.event;
    let json = auditlog_formats::render(format, &event.to_event(), event.inserted_ms)
        .map_err(|e| format!("event {} does not render as {format:?}: {e}", event.id))?;
    let event_id = Uuid::parse_str(&event.id)
        .map_err(|e| format!("event id {:?} is not a UUID: {e}", event.id))?;
    Ok(Rendered {
        event_id,
        time_ms: event.time_ms,
        inserted_ms: event.inserted_ms,
        partition: item.partition,
        offset: item.offset,
        json,
    })
}

/// A batch and the feed position to save once it is acknowledged.
#[derive(Debug, Clone)]
pub struct Cut {
    /// The batch.
    pub batch: Batch,
    /// The position after it.
    pub after: FeedPosition,
}

/// Cuts `events` (in feed order, read after `from`) into batches of at most `limits.max_events`
/// events and `limits.max_bytes` rendered bytes (an event larger than that goes alone). The
/// position after the last batch is `end` (the page's `next`, which also covers rows skipped
/// as duplicates or filtered out); after any other batch it is `from` advanced past its events.
pub fn cut(
    stream_id: &str,
    workspace_id: &str,
    generation: u64,
    from: &FeedPosition,
    end: &FeedPosition,
    events: Vec<Rendered>,
    limits: Limits,
) -> Vec<Cut> {
    let max_events = limits.max_events.max(1);
    let mut groups: Vec<Vec<Rendered>> = Vec::new();
    let mut bytes = 0usize;
    for e in events {
        let full = groups.last().is_none_or(|g| {
            g.len() >= max_events || (!g.is_empty() && bytes + e.json.len() > limits.max_bytes)
        });
        if full {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += e.json.len();
        if let Some(g) = groups.last_mut() {
            g.push(e);
        }
    }
    let mut pos = from.clone();
    let n = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, events)| {
            for e in &events {
                pos.advance(e.partition, e.offset);
            }
            let first = &events[0];
            let after = if i + 1 == n { end.clone() } else { pos.clone() };
            Cut {
                batch: Batch {
                    stream_id: stream_id.to_owned(),
                    workspace_id: workspace_id.to_owned(),
                    batch_id: Batch::id(stream_id, generation, first.partition, first.offset),
                    events,
                },
                after,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ev(offset: i64, size: usize) -> Rendered {
        Rendered {
            event_id: Uuid::new_v4(),
            time_ms: 0,
            inserted_ms: 0,
            partition: 0,
            offset,
            json: vec![b'x'; size],
        }
    }

    fn limits(max_events: usize, max_bytes: usize) -> Limits {
        Limits {
            max_events,
            max_bytes,
            max_wait: Duration::ZERO,
        }
    }

    #[test]
    fn cuts_by_events_and_bytes_and_positions_follow() {
        let from = FeedPosition::beginning();
        let mut end = FeedPosition::beginning();
        end.advance(0, 20); // rows after the last event were skipped (filtered)
        let events: Vec<_> = (0..7).map(|o| ev(o, 10)).collect();
        let cuts = cut("str_a", "ws", 3, &from, &end, events, limits(3, 1000));
        let sizes: Vec<_> = cuts.iter().map(|c| c.batch.events.len()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        assert_eq!(cuts[0].batch.batch_id, "str_a.3.0-0");
        assert_eq!(cuts[1].batch.batch_id, "str_a.3.0-3");
        assert_eq!(cuts[0].after.offsets[&0], 2);
        assert_eq!(cuts[1].after.offsets[&0], 5);
        assert_eq!(cuts[2].after, end);

        let events = vec![ev(0, 40), ev(1, 40), ev(2, 200), ev(3, 10)];
        let cuts = cut("s", "ws", 0, &from, &end, events, limits(100, 100));
        let sizes: Vec<_> = cuts.iter().map(|c| c.batch.events.len()).collect();
        assert_eq!(sizes, [2, 1, 1], "an oversized event goes alone");
        assert!(cut("s", "ws", 0, &from, &end, Vec::new(), limits(1, 1)).is_empty());
    }
}
