//! May a row be gone? The retention rule (docs/verification.md "Retention"): an event of time
//! `t` may have been deleted by retention when some period `[from, next_from)` of the
//! workspace's history with `d > 0` days had its deadline inside it and before the export:
//!
//! `max(from - G, t + d days) <= min(next_from + G, exported_at + G)`
//!
//! with a grace `G` of one minute: a plan change reaches the stored rows by a mutation a few
//! seconds after it is recorded, and a consumer with a stale plan cache stamps rows with the
//! old retention for up to `consumer.plans_refresh` (10 s); rows TTL deletes while the export
//! runs are read as gone.

use auditlog_tlog::wire::RetentionPeriod;

/// The grace around period boundaries and the export time, in milliseconds.
pub const GRACE_MS: i64 = 60_000;

const DAY_MS: i64 = 86_400_000;

/// Whether the row of an event at `time_ms` may have been deleted by retention by
/// `exported_at_ms`, under `periods` (oldest first; the first usually from `i64::MIN`).
pub fn may_be_expired(time_ms: i64, periods: &[RetentionPeriod], exported_at_ms: i64) -> bool {
    let mut sorted = periods.to_vec();
    sorted.sort_by_key(|p| p.from_ms);
    sorted.iter().enumerate().any(|(k, p)| {
        if p.retention_days == 0 {
            return false;
        }
        let next_from = sorted.get(k + 1).map_or(i64::MAX, |n| n.from_ms);
        let deadline = time_ms.saturating_add(i64::from(p.retention_days).saturating_mul(DAY_MS));
        let earliest = p.from_ms.saturating_sub(GRACE_MS).max(deadline);
        let latest = next_from
            .saturating_add(GRACE_MS)
            .min(exported_at_ms.saturating_add(GRACE_MS));
        earliest <= latest
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(from_ms: i64, retention_days: u32) -> RetentionPeriod {
        RetentionPeriod {
            from_ms,
            retention_days,
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn free_keeps_seven_days() {
        let free = [period(i64::MIN, 7)];
        assert!(may_be_expired(NOW - 8 * DAY_MS, &free, NOW));
        assert!(may_be_expired(NOW - 7 * DAY_MS, &free, NOW));
        assert!(!may_be_expired(NOW - 6 * DAY_MS, &free, NOW));
        // Within the grace of the export time.
        assert!(may_be_expired(NOW - 7 * DAY_MS + 30_000, &free, NOW));
        assert!(!may_be_expired(NOW - 7 * DAY_MS + 2 * GRACE_MS, &free, NOW));
    }

    #[test]
    fn unlimited_never_expires() {
        assert!(!may_be_expired(0, &[period(i64::MIN, 0)], NOW));
    }

    #[test]
    fn a_downgrade_expires_old_rows_at_the_change() {
        // Pro (90 days) until 3 days ago, then Free (7 days).
        let change = NOW - 3 * DAY_MS;
        let h = [period(i64::MIN, 90), period(change, 7)];
        // 30 days old: kept by Pro, deleted once Free applied.
        assert!(may_be_expired(NOW - 30 * DAY_MS, &h, NOW));
        // 5 days old: Free keeps it 2 more days.
        assert!(!may_be_expired(NOW - 5 * DAY_MS, &h, NOW));
        // Before the change the same 30-day-old row could not be gone yet.
        assert!(!may_be_expired(
            NOW - 30 * DAY_MS,
            &h,
            change - 5 * GRACE_MS
        ));
    }

    #[test]
    fn an_upgrade_keeps_what_the_old_plan_deleted_deleted() {
        // Free until 10 days ago, then unlimited: a row 20 days old expired under Free.
        let change = NOW - 10 * DAY_MS;
        let h = [period(i64::MIN, 7), period(change, 0)];
        assert!(may_be_expired(NOW - 20 * DAY_MS, &h, NOW));
        // A row 5 days older than the change had 2 days left under Free: must still be here.
        assert!(!may_be_expired(change - 5 * DAY_MS, &h, NOW));
    }
}
