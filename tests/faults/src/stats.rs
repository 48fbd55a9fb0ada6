//! Percentiles, recovery after a fault, and the memory trend over a run.

/// The `q` quantile (0..=1) of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// p50 and p99 of emit-to-insert latencies (ms).
pub fn latency_percentiles(latencies: &[(i64, i64)]) -> (u64, u64) {
    let mut v: Vec<u64> = latencies.iter().map(|l| l.1.max(0) as u64).collect();
    v.sort_unstable();
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

/// Worst latency (ms) of the events emitted in each second from `from_ms`, for `seconds` seconds
/// (`None` for a second without events). `latencies` is sorted by emit time.
pub fn per_second_max(latencies: &[(i64, i64)], from_ms: i64, seconds: usize) -> Vec<Option<i64>> {
    let mut out = vec![None; seconds];
    let start = latencies.partition_point(|l| l.0 < from_ms);
    for (t, lat) in &latencies[start..] {
        let b = ((t - from_ms) / 1000) as usize;
        if b >= seconds {
            break;
        }
        out[b] = Some(out[b].map_or(*lat, |m: i64| m.max(*lat)));
    }
    out
}

/// Seconds from `fault_end_ms` until events are visible within `threshold_ms` again: the first
/// second after which three consecutive seconds of emitted events all stayed under the
/// threshold. `None` when that never happened before the end of the data.
pub fn recovery_secs(
    latencies: &[(i64, i64)],
    fault_end_ms: i64,
    threshold_ms: i64,
) -> Option<u64> {
    let last = latencies.last()?.0;
    let seconds = ((last - fault_end_ms) / 1000 + 1).max(0) as usize;
    let buckets = per_second_max(latencies, fault_end_ms, seconds);
    let good: Vec<bool> = buckets
        .iter()
        .map(|b| b.is_some_and(|m| m < threshold_ms))
        .collect();
    (0..good.len().saturating_sub(2))
        .find(|&i| good[i] && good[i + 1] && good[i + 2])
        .map(|i| i as u64)
}

/// Memory samples of one process (bytes), once a second.
#[derive(Debug, Clone, Default)]
pub struct MemSeries {
    pub name: String,
    pub samples: Vec<u64>,
}

/// Verdict on a memory series: bounded when the mean of the last third is at most the mean
/// of the first third times `1 + ratio` plus `slack` bytes.
#[derive(Debug, Clone)]
pub struct MemTrend {
    pub name: String,
    pub peak: u64,
    pub first_third_mean: u64,
    pub last_third_mean: u64,
    pub bounded: bool,
}

impl MemSeries {
    pub fn trend(&self, ratio: f64, slack: u64) -> MemTrend {
        let n = self.samples.len();
        let third = (n / 3).max(1).min(n.max(1));
        let mean = |s: &[u64]| {
            if s.is_empty() {
                0
            } else {
                s.iter().sum::<u64>() / s.len() as u64
            }
        };
        let first = mean(&self.samples[..third.min(n)]);
        let last = mean(&self.samples[n.saturating_sub(third)..]);
        MemTrend {
            name: self.name.clone(),
            peak: self.samples.iter().copied().max().unwrap_or(0),
            first_third_mean: first,
            last_third_mean: last,
            bounded: n < 3 || (last as f64) <= first as f64 * (1.0 + ratio) + slack as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_picks_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 51);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn recovery_is_first_of_three_good_seconds() {
        // Emitted every 100 ms from t=0; latency 5 s until t=4 s, then 100 ms.
        let lat: Vec<(i64, i64)> = (0..100)
            .map(|i| (i * 100, if i < 40 { 5_000 } else { 100 }))
            .collect();
        assert_eq!(recovery_secs(&lat, 0, 1_000), Some(4));
        assert_eq!(recovery_secs(&lat, 5_000, 1_000), Some(0));
        let never: Vec<(i64, i64)> = (0..100).map(|i| (i * 100, 5_000)).collect();
        assert_eq!(recovery_secs(&never, 0, 1_000), None);
    }

    #[test]
    fn memory_trend_flags_growth() {
        let flat = MemSeries {
            name: "a".into(),
            samples: vec![100; 30],
        };
        assert!(flat.trend(0.2, 0).bounded);
        let growing = MemSeries {
            name: "b".into(),
            samples: (0..30).map(|i| 100 + i * 10).collect(),
        };
        let t = growing.trend(0.2, 0);
        assert!(!t.bounded, "{t:?}");
        assert_eq!(t.peak, 390);
    }
}
