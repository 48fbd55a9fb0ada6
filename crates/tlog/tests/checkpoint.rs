//! C2SP checkpoints: text round trips and refusals.

use auditlog_tlog::{Checkpoint, Error};

const ROOT_B64: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

fn root() -> [u8; 32] {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(ROOT_B64)
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn c2sp_example_parses_and_prints_back() {
    // The example of c2sp.org/tlog-checkpoint.
    let text = format!("example.com/behind-the-sofa\n20852163\n{ROOT_B64}\n");
    let c = Checkpoint::parse(&text).unwrap();
    assert_eq!(c.origin, "example.com/behind-the-sofa");
    assert_eq!(c.size, 20852163);
    assert_eq!(c.root, root());
    assert!(c.extensions.is_empty());
    assert_eq!(c.time_ms(), None);
    assert_eq!(c.to_text(), text);
}

#[test]
fn our_checkpoint_has_the_time_extension() {
    let c = Checkpoint::new("auditlog.example/ws-1", 0, root(), 1_767_225_600_123);
    let text = c.to_text();
    assert_eq!(
        text,
        format!("auditlog.example/ws-1\n0\n{ROOT_B64}\ntime 1767225600123\n")
    );
    let back = Checkpoint::parse(&text).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.time_ms(), Some(1_767_225_600_123));
    let two = format!("o\n{}\n{ROOT_B64}\nfoo bar\ntime 5\n", u64::MAX);
    let c = Checkpoint::parse(&two).unwrap();
    assert_eq!(
        (c.size, c.extensions.len(), c.time_ms()),
        (u64::MAX, 2, Some(5))
    );
    assert_eq!(c.to_text(), two);
}

#[test]
fn malformed_checkpoints_are_refused_naming_the_line() {
    let cases = [
        (format!("o\n1\n{ROOT_B64}"), "line break"),
        (format!("\n1\n{ROOT_B64}\n"), "line 1"),
        ("o\n1\n".to_string(), "root"),
        ("o\n".to_string(), "size"),
        (String::new(), "line break"),
        (format!("o\n01\n{ROOT_B64}\n"), "leading zero"),
        (format!("o\n+1\n{ROOT_B64}\n"), "line 2"),
        (format!("o\n-1\n{ROOT_B64}\n"), "line 2"),
        (format!("o\n1 \n{ROOT_B64}\n"), "line 2"),
        (format!("o\n\n{ROOT_B64}\n"), "line 2"),
        (
            format!("o\n18446744073709551616\n{ROOT_B64}\n"),
            "too large",
        ),
        ("o\n1\nAAAA\n".to_string(), "3 bytes"),
        (format!("o\n1\n{}\n", &ROOT_B64[..43]), "line 3"),
        (format!("o\n1\n{ROOT_B64}x\n"), "line 3"),
        (format!("o\n1\n{ROOT_B64}\n\ntime 1\n"), "line 4"),
        (format!("o\n1\n{ROOT_B64}\ntime 1\n\n"), "line 5"),
    ];
    for (text, needle) in cases {
        match Checkpoint::parse(&text) {
            Err(
                e @ Error::Malformed {
                    what: "checkpoint", ..
                },
            ) => {
                assert!(e.to_string().contains(needle), "{text:?}: {e}")
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(Checkpoint::parse(&format!("o\n0\n{ROOT_B64}\n")).is_ok());
}
