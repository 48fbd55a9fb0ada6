//! ARCHITECTURE.md's "Source files" tables list exactly the files under `crates/*/src` and
//! `tools/*/src`: a
//! file added, moved or removed without its row (or a row left for a file that is gone)
//! fails here, naming it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directories whose crates' sources the tables cover.
const TOPS: [&str; 2] = ["crates", "tools"];

/// Every file under `crates/*/src` and `tools/*/src`, as a path relative to the repository root.
fn source_files() -> BTreeSet<String> {
    fn walk(dir: &Path, rel: &str, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{rel}/{name}");
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &rel, out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut files = BTreeSet::new();
    for top in TOPS {
        for krate in std::fs::read_dir(root().join(top)).unwrap() {
            let krate = krate.unwrap();
            let src = krate.path().join("src");
            if src.is_dir() {
                let name = krate.file_name().to_string_lossy().into_owned();
                walk(&src, &format!("{top}/{name}/src"), &mut files);
            }
        }
    }
    files
}

/// The first cell of every table row that names a file under `crates/*/src` or `tools/*/src`.
fn listed_files(doc: &str) -> Vec<String> {
    doc.lines()
        .filter_map(|line| {
            let cell = line.strip_prefix("| `")?;
            let path = &cell[..cell.find('`')?];
            let mut parts = path.split('/');
            (parts.next().is_some_and(|top| TOPS.contains(&top))
                && parts.next().is_some()
                && parts.next() == Some("src"))
            .then(|| path.to_owned())
        })
        .collect()
}

#[test]
fn architecture_lists_exactly_the_source_files() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let listed = listed_files(&doc);
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(listed.len(), unique.len(), "a file is listed twice");
    let on_disk = source_files();
    let missing: Vec<&String> = on_disk.difference(&unique).collect();
    let gone: Vec<&String> = unique.difference(&on_disk).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "ARCHITECTURE.md \"Source files\" is out of date: not listed {missing:?}; listed but \
         not there {gone:?}"
    );
}

#[test]
fn rows_are_recognised() {
    let doc = "| `crates/a/src/x.rs` | x |\n| `consume.rs` | y |\n| `crates/a/tests/t.rs` | z |\n\
               | `tools/b/src/y.rs` | w |\n| `docs/c/src/z.rs` | v |\n";
    assert_eq!(listed_files(doc), ["crates/a/src/x.rs", "tools/b/src/y.rs"]);
}
