//! `docs/events.md` carries the catalog table generated from `KnownEvent::ALL`.
//! This test fails when the table is out of date; `UPDATE_DOCS=1 cargo test -p auditlog-event
//! --test docs` rewrites it.

use std::path::Path;

use auditlog_event::KnownEvent;

const START: &str =
    "<!-- catalog:start (generated from KnownEvent::ALL by crates/event/tests/docs.rs) -->";
const END: &str = "<!-- catalog:end -->";

fn table() -> String {
    let mut out = String::from("| Event type | Category | Description |\n|---|---|---|\n");
    for k in KnownEvent::ALL {
        let resource = k.as_str().split('.').next().unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            k.as_str(),
            resource,
            k.description().replace('|', "\\|")
        ));
    }
    out
}

#[test]
fn events_md_catalog_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (Some(s), Some(e)) = (doc.find(START), doc.find(END)) else {
        panic!("{} lacks the catalog markers", path.display());
    };
    let current = &doc[s + START.len()..e];
    let wanted = format!("\n{}", table());
    if current != wanted {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let new = format!("{}{START}{wanted}{}", &doc[..s], &doc[e..]);
            std::fs::write(&path, new).unwrap();
        } else {
            panic!("docs/events.md catalog is out of date; run UPDATE_DOCS=1 cargo test -p auditlog-event --test docs");
        }
    }
}
