//! `WitnessClient` against the real witness served in-process.

mod support;

use std::time::Duration;

use auditlog_tlog::{cosignature, Note};
use auditlog_witness::{AddResult, WitnessClient, WitnessError};
use support::{config, witness_key, Served, TestLog, PREFIX};

async fn setup() -> (tempfile::TempDir, TestLog, Served, WitnessClient) {
    let log = TestLog::new(&format!("{PREFIX}ws"), "a");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &witness_key(), &[(PREFIX, &log.verifier())]);
    let w = Served::start(&cfg).await;
    let client = WitnessClient::new(
        &format!("{}/", w.url),
        &w.verifier.to_string(),
        Duration::from_secs(5),
    )
    .unwrap();
    (dir, log, w, client)
}

#[tokio::test]
async fn cosigned_conflict_and_refused() {
    let (_dir, mut log, w, client) = setup().await;
    assert_eq!(client.url(), w.url);
    assert_eq!(client.verifier(), &w.verifier);
    assert_eq!(client.latest(&log.origin).await.unwrap(), None);

    log.grow_to(7);
    let AddResult::Cosigned(sig) = client.add_checkpoint(0, &[], &log.signed()).await.unwrap()
    else {
        panic!("not cosigned")
    };
    cosignature::verify(&w.verifier, &log.body(), &sig).unwrap();

    // The client's view is stale: 409 parsed into the witness's size.
    log.grow_to(20);
    let conflict = client
        .add_checkpoint(3, &log.proof(3), &log.signed())
        .await
        .unwrap();
    assert_eq!(conflict, AddResult::Conflict { witness_size: 7 });
    // Retried from the size the witness has.
    let retried = client
        .add_checkpoint(7, &log.proof(7), &log.signed())
        .await
        .unwrap();
    assert!(matches!(retried, AddResult::Cosigned(_)));

    // The newest cosigned note: the log's signature and this witness's cosignature.
    let latest = client.latest(&log.origin).await.unwrap().unwrap();
    let note = Note::parse(&latest).unwrap();
    assert_eq!(note.text, log.body());
    assert!(note.verified_by(&log.verifier()));

    // A fork: 422, Refused with the status and the witness's reason.
    let mut fork = log.fork("b");
    fork.grow_to(30);
    match client
        .add_checkpoint(20, &fork.proof(20), &fork.signed())
        .await
    {
        Err(WitnessError::Refused {
            status: 422, body, ..
        }) => assert!(!body.is_empty()),
        other => panic!("{other:?}"),
    }
    // Another key: 403.
    let mut impostor = TestLog::new(&log.origin, "a");
    impostor.grow_to(30);
    let err = client
        .add_checkpoint(20, &impostor.proof(20), &impostor.signed())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WitnessError::Refused { status: 403, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_cosignature_by_another_key_is_not_accepted() {
    let (_dir, mut log, w, _) = setup().await;
    let other = witness_key().verifier();
    // Same name, another key: the answer's line does not match it.
    let client = WitnessClient::new(&w.url, &other.to_string(), Duration::from_secs(5)).unwrap();
    log.grow_to(3);
    let err = client
        .add_checkpoint(0, &[], &log.signed())
        .await
        .unwrap_err();
    assert!(matches!(err, WitnessError::BadCosignature { .. }), "{err}");
    // A log key is not a witness key.
    assert!(
        WitnessClient::new(&w.url, &log.verifier().to_string(), Duration::from_secs(1)).is_err()
    );
    assert!(WitnessClient::new(&w.url, "not a key", Duration::from_secs(1)).is_err());
}

#[tokio::test]
async fn a_witness_that_is_down_is_unreachable() {
    let (_dir, mut log, w, client) = setup().await;
    w.stop().await;
    log.grow_to(3);
    let err = client
        .add_checkpoint(0, &[], &log.signed())
        .await
        .unwrap_err();
    assert!(matches!(err, WitnessError::Unreachable { .. }), "{err}");
    let err = client.latest(&log.origin).await.unwrap_err();
    assert!(matches!(err, WitnessError::Unreachable { .. }), "{err}");
}
