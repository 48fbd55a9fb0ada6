//! The witness's HTTP API against real requests (served in-process through the binary's serve
//! loop): C2SP tlog-witness add-checkpoint checks, the append-only file, restarts.

mod support;

use auditlog_tlog::{cosignature, Checkpoint, Note, Signature};
use support::{config, witness_key, Served, TestLog, PREFIX};

/// A witness trusting `log`'s key for every origin under PREFIX, state in a new temp dir.
async fn witness_for(log: &TestLog) -> (tempfile::TempDir, Served) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &witness_key(), &[(PREFIX, &log.verifier())]);
    let served = Served::start(&cfg).await;
    (dir, served)
}

fn origin(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The cosignature line of a 200 answer, verified over `body`.
fn cosigned(served: &Served, answer: &(u16, String, String), body: &str) -> Signature {
    assert_eq!(answer.0, 200, "{answer:?}");
    let lines: Vec<&str> = answer.2.lines().collect();
    assert_eq!(lines.len(), 1, "{answer:?}");
    assert!(answer.2.ends_with('\n'));
    let sig = Signature::parse_line(lines[0]).unwrap();
    cosignature::verify(&served.verifier, body, &sig).unwrap();
    sig
}

#[tokio::test]
async fn a_first_checkpoint_then_a_consistent_bigger_one_are_cosigned() {
    let mut log = TestLog::new(&origin("ws1"), "a");
    let (_dir, w) = witness_for(&log).await;
    assert_eq!(w.latest(&log.origin).await.0, 404);

    log.grow_to(5);
    let first = w.add(log.add_body(0)).await;
    let sig = cosigned(&w, &first, &log.body());
    let time = cosignature::verify(&w.verifier, &log.body(), &sig).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(time.abs_diff(now) < 60, "cosigned at {time}, now {now}");

    // Across a tile boundary (256 leaves).
    log.grow_to(300);
    let second = w.add(log.add_body(5)).await;
    cosigned(&w, &second, &log.body());

    // GET /checkpoint: the log's signature and the witness's cosignature.
    let (status, text) = w.latest(&log.origin).await;
    assert_eq!(status, 200, "{text}");
    let note = Note::parse(&text).unwrap();
    assert_eq!(note.text, log.body());
    assert_eq!(note.signatures.len(), 2, "{text}");
    assert!(note.verified_by(&log.verifier()));
    cosignature::verify(&w.verifier, &note.text, &note.signatures[1]).unwrap();
    assert_eq!(Checkpoint::parse(&note.text).unwrap().size, 300);

    // GET /log: one line per cosigned checkpoint.
    let lines = w.log_lines().await;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["size"], 5);
    assert_eq!(lines[1]["size"], 300);
    assert_eq!(lines[1]["origin"], log.origin.as_str());
    assert_eq!(lines[1]["cosignature"], second.2.trim_end());
    assert!(lines[1]["time"].as_u64().is_some());
    assert!(lines[1]["note"].as_str().unwrap().starts_with(&log.body()));
}

#[tokio::test]
async fn an_inconsistent_checkpoint_is_refused_422_and_not_recorded() {
    let mut log = TestLog::new(&origin("ws"), "a");
    let (_dir, w) = witness_for(&log).await;
    log.grow_to(10);
    assert_eq!(w.add(log.add_body(0)).await.0, 200);

    // Same key, same origin, other leaves: its own proof does not link to the cosigned root.
    let mut fork = log.fork("b");
    fork.grow_to(20);
    let (status, _, why) = w.add(fork.add_body(10)).await;
    assert_eq!(status, 422, "{why}");
    // Nor does the real log's proof for the fork's root.
    log.grow_to(20);
    let mixed = auditlog_witness::request::encode(10, &log.proof(10), &fork.signed());
    assert_eq!(w.add(mixed).await.0, 422);
    // A proof cut short, or garbage hashes.
    let short = auditlog_witness::request::encode(10, &log.proof(10)[1..], &log.signed());
    assert_eq!(w.add(short).await.0, 422);
    let junk = auditlog_witness::request::encode(10, &[[7u8; 32]; 3], &log.signed());
    assert_eq!(w.add(junk).await.0, 422);

    assert_eq!(w.log_lines().await.len(), 1);
    let (_, text) = w.latest(&log.origin).await;
    assert_eq!(
        Checkpoint::parse(&Note::parse(&text).unwrap().text)
            .unwrap()
            .size,
        10
    );
    // The real growth is still cosigned.
    assert_eq!(w.add(log.add_body(10)).await.0, 200);
}

#[tokio::test]
async fn a_rollback_or_a_wrong_old_size_is_refused() {
    let mut log = TestLog::new(&origin("ws"), "a");
    let (_dir, w) = witness_for(&log).await;
    log.grow_to(10);
    assert_eq!(w.add(log.add_body(0)).await.0, 200);

    let mut small = log.fork("a");
    small.grow_to(5);
    // old above the size: 400 (spec).
    let (status, _, why) = w.add(small.add_body(10)).await;
    assert_eq!(status, 400, "{why}");
    // old 0 (or any other size than 10): 409 with the witness's size.
    for old in [0, 3, 5] {
        let (status, ctype, body) = w.add(small.add_body(old)).await;
        assert_eq!(
            (status, ctype.as_str(), body.as_str()),
            (409, "text/x.tlog.size", "10\n")
        );
    }
    // A bigger one with a wrong old size: 409 too.
    log.grow_to(12);
    let (status, ctype, body) = w.add(log.add_body(11)).await;
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "10\n")
    );
    // A new origin is at 0.
    let mut other = TestLog::with_signer(
        &origin("ws2"),
        "c",
        auditlog_tlog::Signer::from_private_key(&log.signer.private_key()).unwrap(),
    );
    other.grow_to(3);
    let (status, ctype, body) = w.add(other.add_body(2)).await;
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "0\n")
    );
    assert_eq!(w.log_lines().await.len(), 1);
}

#[tokio::test]
async fn the_same_size_needs_the_same_root() {
    let mut log = TestLog::new(&origin("ws"), "a");
    let (_dir, w) = witness_for(&log).await;
    log.grow_to(10);
    assert_eq!(w.add(log.add_body(0)).await.0, 200);
    // The same checkpoint again: cosigned again (idempotent for a retrying log).
    assert_eq!(w.add(log.add_body(10)).await.0, 200);
    // Same size, another root: 409 without a size body (a fork, not a stale client).
    let mut fork = log.fork("b");
    fork.grow_to(10);
    let (status, ctype, why) = w.add(fork.add_body(10)).await;
    assert_eq!(status, 409, "{why}");
    assert_ne!(ctype, "text/x.tlog.size");
    assert_eq!(w.log_lines().await.len(), 2);
}

#[tokio::test]
async fn unknown_origins_other_keys_and_tampered_notes_are_refused() {
    let mut log = TestLog::new(&origin("ws"), "a");
    let (_dir, w) = witness_for(&log).await;
    log.grow_to(4);

    // An origin no [witness] logs entry matches: 404 (C2SP tlog-witness).
    let mut stranger = TestLog::with_signer(
        "elsewhere.example/ws",
        "a",
        auditlog_tlog::Signer::from_private_key(&log.signer.private_key()).unwrap(),
    );
    stranger.grow_to(4);
    assert_eq!(w.add(stranger.add_body(0)).await.0, 404);
    assert_eq!(w.witness.origin_count(), 0);

    // Signed by another key: 403.
    let mut impostor = TestLog::new(&log.origin, "a");
    impostor.grow_to(4);
    assert_eq!(w.add(impostor.add_body(0)).await.0, 403);

    // A signed note whose text was changed after signing: 403.
    let signed = log.signed();
    let tampered = signed.replacen("\n4\n", "\n5\n", 1);
    assert_ne!(signed, tampered);
    let body = auditlog_witness::request::encode(0, &[], &tampered);
    assert_eq!(w.add(body).await.0, 403);
    // A signature with a flipped byte: 403.
    let note = Note::parse(&signed).unwrap();
    let mut sig = note.signatures[0].clone();
    sig.bytes[10] ^= 1;
    let flipped = Note {
        text: note.text.clone(),
        signatures: vec![sig],
    }
    .to_string();
    assert_eq!(
        w.add(auditlog_witness::request::encode(0, &[], &flipped))
            .await
            .0,
        403
    );
    // An unsigned note cannot even be parsed as one: 400.
    assert_eq!(w.add(format!("old 0\n\n{}", log.body())).await.0, 400);

    // A valid signature of the trusted key next to an unknown one: accepted, the unknown one
    // ignored (and not kept).
    let mut with_extra = note.clone();
    with_extra
        .signatures
        .push(impostor.signer.sign_note(&note.text).unwrap());
    let (status, _, _) = w
        .add(auditlog_witness::request::encode(
            0,
            &[],
            &with_extra.to_string(),
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(w.witness.origin_count(), 1);
    let (_, text) = w.latest(&log.origin).await;
    assert_eq!(Note::parse(&text).unwrap().signatures.len(), 2, "{text}");
    assert_eq!(w.log_lines().await.len(), 1);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused() {
    let mut log = TestLog::new(&origin("ws"), "a");
    let (_dir, w) = witness_for(&log).await;
    log.grow_to(4);
    let signed = log.signed();
    for body in [
        String::new(),
        "old 0".into(),
        "old 0\n".into(),
        "old 0\n\n".into(),
        format!("old 00\n\n{signed}"),
        format!("old x\n\n{signed}"),
        format!("old 0\nnot base64!\n\n{signed}"),
        format!("old 0\n{signed}"),
        "old 0\n\nnot a note".into(),
        // A note that is not a checkpoint.
        format!(
            "old 0\n\n{}",
            support::sign(&log.signer, "just some text\n")
        ),
    ] {
        let (status, _, why) = w.add(body.clone()).await;
        assert_eq!(status, 400, "{body:?}: {why}");
    }
    // Not UTF-8.
    let (status, _, _) = w.add(vec![b'o', b'l', b'd', b' ', 0xff, b'\n']).await;
    assert_eq!(status, 400);
    // Above witness.max_body_bytes (16 KiB here): 413, with or without a length up front.
    let big = format!("old 0\n\n{signed}{}", "x".repeat(20_000));
    assert_eq!(w.add(big.clone()).await.0, 413);
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..40).map(|_| Ok("y".repeat(1000))).collect();
    let streamed = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    assert_eq!(w.add(streamed).await.0, 413);
    // Other methods and paths.
    let get = reqwest::get(format!("{}/add-checkpoint", w.url))
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let missing = reqwest::get(format!("{}/checkpoint", w.url)).await.unwrap();
    assert_eq!(missing.status().as_u16(), 400);
    assert!(w.log_lines().await.is_empty());
    // Still serving.
    assert_eq!(w.add(log.add_body(0)).await.0, 200);
    let live = reqwest::get(format!("{}/health/live", w.url))
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
    let ready = reqwest::get(format!("{}/health/ready", w.url))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

#[tokio::test]
async fn random_bodies_never_break_the_witness() {
    use rand::{Rng as _, SeedableRng as _};
    let mut log = TestLog::new(&origin("ws"), "a");
    let (_dir, w) = witness_for(&log).await;
    log.grow_to(9);
    let good = log.add_body(0).into_bytes();
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    for i in 0..300 {
        let mut body = good.clone();
        match i % 3 {
            // Flip bytes.
            0 => {
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..body.len());
                    body[at] = rng.random();
                }
            }
            // Cut.
            1 => body.truncate(rng.random_range(0..body.len())),
            // Random bytes.
            _ => {
                body = (0..rng.random_range(0..200))
                    .map(|_| rng.random())
                    .collect()
            }
        }
        let (status, _, _) = w.add(body.clone()).await;
        assert!(
            [200, 400, 403, 404, 409, 422].contains(&status),
            "{status} for {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    let live = reqwest::get(format!("{}/health/live", w.url))
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
}

#[tokio::test]
async fn a_restart_keeps_the_state_and_a_torn_last_line_is_ignored() {
    let mut log = TestLog::new(&origin("ws"), "a");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &witness_key(), &[(PREFIX, &log.verifier())]);
    let w = Served::start(&cfg).await;
    log.grow_to(10);
    assert_eq!(w.add(log.add_body(0)).await.0, 200);
    let file = w.file();
    w.stop().await;

    // A crash mid-append leaves a torn last line.
    let good = std::fs::read(&file).unwrap();
    let mut torn = good.clone();
    torn.extend_from_slice(br#"{"origin":"auditlog.test/ws","size":99,"ro"#);
    std::fs::write(&file, &torn).unwrap();

    let w = Served::start(&cfg).await;
    assert_eq!(
        std::fs::read(&file).unwrap(),
        good,
        "the torn line is cut off"
    );
    // A rollback is still refused after the restart, the state is size 10.
    let mut small = log.fork("a");
    small.grow_to(4);
    let (status, _, body) = w.add(small.add_body(0)).await;
    assert_eq!((status, body.as_str()), (409, "10\n"));
    let (status, text) = w.latest(&log.origin).await;
    assert_eq!(status, 200);
    assert!(text.starts_with(&log.body()));
    // And it grows from 10.
    log.grow_to(11);
    assert_eq!(w.add(log.add_body(10)).await.0, 200);
    assert_eq!(w.log_lines().await.len(), 2);
    w.stop().await;

    let w = Served::start(&cfg).await;
    let (_, _, body) = w.add(small.add_body(0)).await;
    assert_eq!(body, "11\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_adds_from_the_same_size_exactly_one_wins() {
    let mut log = TestLog::new(&origin("ws"), "a");
    let (_dir, w) = witness_for(&log).await;
    log.grow_to(10);
    assert_eq!(w.add(log.add_body(0)).await.0, 200);
    // Eight different valid successors of size 10 (sizes 11..=18 of the same log).
    let bodies: Vec<String> = (11..=18)
        .map(|n| {
            log.grow_to(n);
            log.add_body(10)
        })
        .collect();
    let w = std::sync::Arc::new(w);
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|b| {
            let w = w.clone();
            tokio::spawn(async move { w.add(b).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let won: Vec<_> = statuses.iter().filter(|s| s.0 == 200).collect();
    assert_eq!(won.len(), 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| s.0 == 200 || s.0 == 409),
        "{statuses:?}"
    );
    assert_eq!(w.log_lines().await.len(), 2);
}

/// Reads from `s` until the server closes it; how long that took.
async fn closed_after(mut s: tokio::net::TcpStream) -> std::time::Duration {
    use tokio::io::AsyncReadExt as _;
    let start = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    let deadline = std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection was still open after {deadline:?}"),
        }
    }
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt as _;
    let log = TestLog::new(&origin("ws"), "a");
    let (_dir, w) = witness_for(&log).await;
    // A head that never ends (witness.header_read_timeout, 1 s here).
    let mut s = tokio::net::TcpStream::connect(w.addr).await.unwrap();
    s.write_all(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\n")
        .await
        .unwrap();
    let took = closed_after(s).await;
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
    // A body that stalls (witness.idle_timeout, 1 s here).
    let mut s = tokio::net::TcpStream::connect(w.addr).await.unwrap();
    s.write_all(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 100\r\n\r\nold 0\n")
        .await
        .unwrap();
    let took = closed_after(s).await;
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
    // A connection that sends nothing.
    let s = tokio::net::TcpStream::connect(w.addr).await.unwrap();
    let took = closed_after(s).await;
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
    assert!(w.log_lines().await.is_empty());
}
