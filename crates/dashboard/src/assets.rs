//! The embedded files, their content types and the version that busts caches.

use std::borrow::Cow;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use rust_embed::Embed;

/// Everything under `crates/dashboard/assets/`, embedded at compile time.
#[derive(Embed)]
#[folder = "assets/"]
struct Assets;

/// The placeholder in `index.html` replaced by [`version`].
const VERSION_PLACEHOLDER: &str = "__ASSET_VERSION__";

/// One embedded file, ready to serve.
pub(crate) struct Asset {
    pub(crate) body: Cow<'static, [u8]>,
    pub(crate) content_type: &'static str,
    /// Weak validator (the body may be sent gzipped or not): a digest of the content.
    pub(crate) etag: String,
}

/// Hash of every asset's name and SHA-256: changes whenever any file changes. `DefaultHasher`
/// is deterministic (fixed keys), which is all a cache-busting id needs.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = DefaultHasher::new();
    for name in asset_names() {
        if let Some(file) = Assets::get(&name) {
            name.hash(&mut hasher);
            file.metadata.sha256_hash().hash(&mut hasher);
        }
    }
    format!("{:016x}", hasher.finish())
});

/// `index.html` with asset URLs pointing at the current [`version`].
static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    let raw = Assets::get("index.html")
        .map(|f| f.data)
        .unwrap_or_default();
    let html = String::from_utf8_lossy(&raw).replace(VERSION_PLACEHOLDER, version());
    let etag = format!("W/\"{}-{}\"", version(), html.len());
    Asset {
        body: Cow::Owned(html.into_bytes()),
        content_type: "text/html; charset=utf-8",
        etag,
    }
});

/// The version string appended to asset URLs (`?v=...`): 16 hex digits derived from the
/// SHA-256 of every embedded file.
pub fn version() -> &'static str {
    &VERSION
}

/// Names of the embedded files, sorted (for diagnostics and tests).
pub fn asset_names() -> Vec<String> {
    let mut names: Vec<String> = Assets::iter().map(Cow::into_owned).collect();
    names.sort();
    names
}

/// Total size in bytes of the embedded files, uncompressed.
pub fn total_size() -> usize {
    Assets::iter()
        .filter_map(|name| Assets::get(&name))
        .map(|f| f.data.len())
        .sum()
}

/// The rendered page.
pub(crate) fn index() -> &'static Asset {
    &INDEX
}

/// An asset by its path under `/assets/`, or `None`. `index.html` is only served at `/`.
pub(crate) fn get(path: &str) -> Option<Asset> {
    if path == "index.html" {
        return None;
    }
    let content_type = content_type(path)?;
    let file = Assets::get(path)?;
    let digest: String = file.metadata.sha256_hash()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let etag = format!("W/\"{digest}\"");
    Some(Asset {
        body: file.data,
        content_type,
        etag,
    })
}

/// Content type by extension; files of other kinds are not served.
fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_refers_to_assets_by_version() {
        let html = std::str::from_utf8(&index().body).unwrap();
        assert!(!html.contains(VERSION_PLACEHOLDER));
        assert!(html.contains(&format!("/assets/app.js?v={}", version())));
        assert!(html.contains(&format!("/assets/app.css?v={}", version())));
    }

    #[test]
    fn every_embedded_file_has_a_content_type() {
        for name in asset_names() {
            assert!(content_type(&name).is_some(), "{name}");
        }
    }

    #[test]
    fn assets_stay_small() {
        // The page must load fast; a framework or a stray binary would blow this budget.
        assert!(
            total_size() < 200 * 1024,
            "assets are {} bytes",
            total_size()
        );
    }
}
