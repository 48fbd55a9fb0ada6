//! The dashboard as the API serves it: its page carries the contract the scripts read instead
//! of copying it, the event catalog and the API's own filter parameters. No ClickHouse needed:
//! the page is served without a query.

use auditlog_event::KnownEvent;
use auditlog_query::api::{app, AppState};
use auditlog_query::filter::FILTER_PARAMS;
use auditlog_query::ApiConfig;
use auditlog_store::ClickHouseConfig;
use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt as _;

#[tokio::test]
async fn the_page_carries_the_catalog_and_the_api_filter_parameters() {
    // Nothing listens there, and nothing is asked of it.
    let ch = ClickHouseConfig {
        url: "http://127.0.0.1:9".into(),
        ..Default::default()
    };
    let prometheus = auditlog_testkit::prometheus(auditlog_query::api::metrics::HISTOGRAM_BUCKETS);
    let app = app(AppState::new(
        &ApiConfig::default(),
        ch.client(),
        prometheus,
    ));
    let resp = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let html = std::str::from_utf8(&body).unwrap();
    let (_, rest) = html
        .split_once(r#"<script type="application/json" id="contract">"#)
        .expect("the page has the contract data block");
    let (text, _) = rest.split_once("</script>").unwrap();
    let contract: Value = serde_json::from_str(text).unwrap();

    let catalog: Vec<&str> = KnownEvent::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(contract["catalog"], json!(catalog));
    assert_eq!(contract["filters"], json!(FILTER_PARAMS));
}
