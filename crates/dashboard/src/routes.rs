//! The HTTP side: `/` and `/assets/{*path}` with content types, validators and cache headers.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::compression::CompressionLayer;

use crate::assets::{self, Asset};
use crate::contract;

/// Cache policy for a versioned asset URL (`?v=` matches the running binary).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache policy for everything else: store, but revalidate before each use.
const REVALIDATE: &str = "no-cache";
/// The page loads only its own files and talks only to its own origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The dashboard routes: `GET /` (the page) and `GET /assets/{*path}` (its files).
/// `HEAD` is answered too; bodies are gzipped for clients that accept it. Merge it into the
/// API router.
///
/// `filters` are the names of the API's filter parameters (those of list, counts and export),
/// handed to the page with the event catalog (the contract, `src/contract.rs`): the page keeps
/// them in its URL and sends them to the API, and copies neither list.
pub fn router<S>(filters: &[&str]) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let page = Arc::new(assets::page(&contract::script_json(filters)));
    Router::new()
        .route("/", get(index))
        .with_state(page)
        .route("/assets/{*path}", get(asset))
        .layer(CompressionLayer::new().gzip(true))
}

async fn index(State(page): State<Arc<Asset>>, headers: HeaderMap) -> Response {
    let mut response = respond(&page, REVALIDATE, &headers);
    let h = response.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn asset(
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = assets::get(&path) else {
        return not_found(&path);
    };
    let versioned = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.strip_prefix("v=") == Some(assets::version()))
    });
    respond(
        asset,
        if versioned { IMMUTABLE } else { REVALIDATE },
        &headers,
    )
}

/// 200 with the body, or 304 when the browser's copy is current.
fn respond(asset: &Asset, cache_control: &'static str, request: &HeaderMap) -> Response {
    let fresh = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == asset.etag.trim_start_matches("W/")
        });
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        headers.insert(ETAG, etag);
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    (headers, asset.body.clone().into_owned()).into_response()
}

/// The API's error shape, so clients see one format everywhere.
fn not_found(path: &str) -> Response {
    let body = serde_json::json!({
        "error": {
            "code": "not_found",
            "message": format!("no dashboard asset named {path}"),
        }
    })
    .to_string();
    (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// Filter names as the API would pass them (the real list is the query crate's).
    const FILTERS: &[&str] = &["event", "actor_type", "since", "until", "q"];

    async fn get_with(uri: &str, if_none_match: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(tag) = if_none_match {
            req = req.header(IF_NONE_MATCH, tag);
        }
        router::<()>(FILTERS)
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn text(r: Response) -> String {
        let body = to_bytes(r.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    fn header<'a>(r: &'a Response, name: &str) -> &'a str {
        r.headers().get(name).map_or("", |v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn index_is_html_revalidated_with_a_strict_policy() {
        let r = get_with("/", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&r, "cache-control"), "no-cache");
        assert!(header(&r, "content-security-policy").contains("script-src 'self'"));
        let etag = header(&r, "etag").to_owned();
        let body = to_bytes(r.into_body(), usize::MAX).await.unwrap();
        assert!(std::str::from_utf8(&body).unwrap().contains("<title>"));

        let again = get_with("/", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(to_bytes(again.into_body(), usize::MAX)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn the_page_carries_the_catalog_and_the_filters_it_was_given() {
        // `contract::script_json` is checked against the catalog in contract.rs.
        let html = text(get_with("/", None).await).await;
        let block = format!(
            r#"<script type="application/json" id="contract">{}</script>"#,
            contract::script_json(FILTERS)
        );
        assert!(html.contains(&block), "{html}");
    }

    #[tokio::test]
    async fn scripts_are_modules_whose_imports_share_the_page_version() {
        let html = text(get_with("/", None).await).await;
        let entry = format!(
            r#"<script type="module" src="/assets/app.js?v={}"></script>"#,
            crate::version()
        );
        assert!(html.contains(&entry), "{html}");

        let r = get_with(&format!("/assets/app.js?v={}", crate::version()), None).await;
        assert_eq!(header(&r, "cache-control"), IMMUTABLE);
        let script = text(r).await;
        let import = format!(".js?v={}';", crate::version());
        assert!(script.contains(&import), "{script}");
    }

    #[tokio::test]
    async fn assets_have_their_content_type_and_versioned_urls_are_immutable() {
        for (file, ty) in [
            ("app.js", "text/javascript; charset=utf-8"),
            ("app.css", "text/css; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
        ] {
            let r = get_with(&format!("/assets/{file}?v={}", crate::version()), None).await;
            assert_eq!(r.status(), StatusCode::OK, "{file}");
            assert_eq!(header(&r, "content-type"), ty, "{file}");
            assert_eq!(header(&r, "cache-control"), IMMUTABLE, "{file}");
            assert_eq!(header(&r, "x-content-type-options"), "nosniff");

            let stale = get_with(&format!("/assets/{file}?v=0000"), None).await;
            assert_eq!(header(&stale, "cache-control"), "no-cache", "{file}");
            let bare = get_with(&format!("/assets/{file}"), None).await;
            assert_eq!(header(&bare, "cache-control"), "no-cache", "{file}");

            let etag = header(&bare, "etag").to_owned();
            assert!(etag.starts_with("W/\""), "{etag}");
            let strong = etag.trim_start_matches("W/");
            let revalidated = get_with(&format!("/assets/{file}"), Some(strong)).await;
            assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED, "{file}");
        }
    }

    #[tokio::test]
    async fn bodies_are_gzipped_when_the_client_accepts_it() {
        let req = Request::get("/assets/app.js")
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .unwrap();
        let r = router::<()>(FILTERS).oneshot(req).await.unwrap();
        assert_eq!(header(&r, "content-encoding"), "gzip");
        assert_eq!(header(&r, "content-type"), "text/javascript; charset=utf-8");
        let body = to_bytes(r.into_body(), usize::MAX).await.unwrap();
        let raw = assets::get("app.js").unwrap().body.len();
        assert!(body.len() * 2 < raw, "{} gzipped vs {raw} raw", body.len());
    }

    #[tokio::test]
    async fn unknown_paths_are_json_404s() {
        for uri in [
            "/assets/nope.js",
            "/assets/index.html",
            "/assets/../Cargo.toml",
        ] {
            let r = get_with(uri, None).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(header(&r, "content-type"), "application/json");
            let body = to_bytes(r.into_body(), usize::MAX).await.unwrap();
            assert!(std::str::from_utf8(&body)
                .unwrap()
                .contains("\"not_found\""));
        }
    }

    #[tokio::test]
    async fn the_404_body_is_json_naming_the_asset_whatever_its_characters() {
        // The router sees the percent-decoded path: quotes, backslashes, control characters
        // and non-ASCII names must all come back as valid JSON, the name byte for byte.
        for (uri, name) in [
            ("/assets/caf%C3%A9.js", "café.js"),
            ("/assets/%E6%97%A5%E6%9C%AC.css", "日本.css"),
            ("/assets/a%22b%5Cc.js", "a\"b\\c.js"),
            ("/assets/tab%09nl%0Acr%0D.js", "tab\tnl\ncr\r.js"),
            ("/assets/nul%00bell%07.js", "nul\u{0}bell\u{7}.js"),
            ("/assets/%F0%9F%A6%80.svg", "\u{1F980}.svg"),
        ] {
            let r = get_with(uri, None).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{uri}");
            let body = to_bytes(r.into_body(), usize::MAX).await.unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {body:?}"));
            assert_eq!(json["error"]["code"], "not_found", "{uri}");
            assert_eq!(
                json["error"]["message"],
                format!("no dashboard asset named {name}"),
                "{uri}"
            );
        }
    }
}
