//! The synthetic generator: valid, deterministic, covers the catalog, sizes as asked.

use std::collections::HashSet;

use auditlog_event::synth::{Synth, SynthConfig};
use auditlog_event::{KnownEvent, OutcomeStatus};
use chrono::{TimeDelta, Utc};

#[test]
fn valid_deterministic_and_covering() {
    let cfg = SynthConfig {
        seed: 11,
        workspaces: 20,
        ..SynthConfig::default()
    }
    .over_days(30);
    let a: Vec<_> = Synth::new(cfg.clone()).take(3000).collect();
    let b: Vec<_> = Synth::new(cfg.clone()).take(3000).collect();
    assert_eq!(a, b, "same config, same events");

    let mut types = HashSet::new();
    let mut workspaces = HashSet::new();
    let mut ids = HashSet::new();
    let mut failures = 0;
    for e in &a {
        e.validate().unwrap_or_else(|err| panic!("{err}: {e:?}"));
        types.insert(e.event.as_str().to_owned());
        workspaces.insert(e.workspace_id.clone());
        assert!(ids.insert(e.event_id));
        assert!(e.time <= cfg.now && e.time >= cfg.now - TimeDelta::days(30));
        if e.outcome.status == OutcomeStatus::Failure {
            failures += 1;
            assert_eq!(e.event.known(), Some(KnownEvent::KeyVerifyFailed));
        }
    }
    assert_eq!(types.len(), KnownEvent::ALL.len());
    assert_eq!(workspaces.len(), 20);
    assert!(failures > 100, "{failures}");
    let days: HashSet<_> = a.iter().map(|e| e.time.date_naive()).collect();
    assert!(days.len() >= 25, "spread over the days: {}", days.len());
}

#[test]
fn old_events_for_retention_tests() {
    let now = Utc::now() - TimeDelta::days(8);
    let e = Synth::new(SynthConfig {
        now,
        ..SynthConfig::default()
    })
    .next_event();
    assert!(e.time <= now);
    e.validate().unwrap();
}

#[test]
fn target_size() {
    let synth = Synth::new(SynthConfig {
        target_bytes: Some(1024),
        ..SynthConfig::default()
    });
    for e in synth.take(200) {
        let len = e.to_json_bytes().len();
        assert!((1000..=1400).contains(&len), "{len}");
    }
}
