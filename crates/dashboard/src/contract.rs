//! What the page learns from the server instead of copying it: the event catalog and the names
//! of the API's filter parameters.
//!
//! The contract is JSON embedded in `index.html` as a data block,
//! `<script type="application/json" id="contract">`, which the browser never executes (the
//! Content-Security-Policy allows no inline script) and the page reads at start
//! (`assets/contract.js`). It costs no request and cannot be out of date with the binary.
//!
//! ```json
//! {"catalog": ["key.create", ...], "actor_types": ["user", ...], "filters": ["event", ...]}
//! ```
//!
//! - `catalog`: every type of [`KnownEvent::ALL`], in its order (grouped by resource), so the
//!   event-type picker lists types no event has used yet.
//! - `actor_types`: every [`ActorType::ALL`], for the actor-type select.
//! - `filters`: the filter parameters of the list, counts and export reads, as the API names
//!   them. The page keeps exactly these in its URL (plus its own `range` preset) and sends them
//!   to the API.

use auditlog_event::{ActorType, KnownEvent};

/// The contract as JSON text safe inside a `<script>` element: `<` is escaped (`\u003c`), so
/// no value can close the element or open a comment.
pub(crate) fn script_json(filters: &[&str]) -> String {
    let catalog: Vec<&str> = KnownEvent::ALL.iter().map(|k| k.as_str()).collect();
    let actor_types: Vec<&str> = ActorType::ALL.iter().map(|a| a.as_str()).collect();
    serde_json::json!({ "catalog": catalog, "actor_types": actor_types, "filters": filters })
        .to_string()
        .replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_catalog_in_order_and_the_filters_as_given() {
        let v: serde_json::Value = serde_json::from_str(&script_json(&["event", "q"])).unwrap();
        let catalog: Vec<&str> = KnownEvent::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(v["catalog"], serde_json::json!(catalog));
        assert_eq!(v["filters"], serde_json::json!(["event", "q"]));
        assert_eq!(
            v["actor_types"],
            serde_json::json!(["user", "root_key", "system"])
        );
    }

    #[test]
    fn no_value_can_end_the_script_element() {
        let text = script_json(&["</script><script>alert(1)</script>", "<!--"]);
        assert!(!text.contains('<'), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["filters"][0], "</script><script>alert(1)</script>");
        assert_eq!(v["filters"][1], "<!--");
    }
}
