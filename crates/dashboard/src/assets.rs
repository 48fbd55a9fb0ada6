//! The embedded files, their content types, validators and the version that busts caches.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use rust_embed::Embed;

/// Everything under `crates/dashboard/assets/`, embedded at compile time.
#[derive(Embed)]
#[folder = "assets/"]
struct Assets;

/// The placeholder replaced by [`version`] in `index.html` and in the scripts (their imports
/// are `./file.js?v=__ASSET_VERSION__`, so a page only ever loads modules of one version).
const VERSION_PLACEHOLDER: &str = "__ASSET_VERSION__";
/// The placeholder in `index.html` replaced by the contract JSON (`contract.rs`).
const CONTRACT_PLACEHOLDER: &str = "__CONTRACT__";

/// One file, ready to serve.
pub(crate) struct Asset {
    pub(crate) body: Cow<'static, [u8]>,
    pub(crate) content_type: &'static str,
    /// Weak validator (the body may be sent gzipped or not): a digest of the body as served.
    pub(crate) etag: String,
}

impl Asset {
    fn new(body: Cow<'static, [u8]>, content_type: &'static str) -> Self {
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let etag = format!("W/\"{:016x}\"", hasher.finish());
        Self {
            body,
            content_type,
            etag,
        }
    }
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

/// The files served under `/assets/`, by name, rendered once: scripts carry the version in
/// their import URLs. `index.html` is only served at `/` (see [`page`]).
static FILES: LazyLock<HashMap<String, Asset>> = LazyLock::new(|| {
    asset_names()
        .into_iter()
        .filter(|name| name != "index.html")
        .filter_map(|name| {
            let content_type = content_type(&name)?;
            let data = Assets::get(&name)?.data;
            let body = if name.ends_with(".js") {
                Cow::Owned(with_version(&data).into_bytes())
            } else {
                data
            };
            Some((name, Asset::new(body, content_type)))
        })
        .collect()
});

fn with_version(text: &[u8]) -> String {
    String::from_utf8_lossy(text).replace(VERSION_PLACEHOLDER, version())
}

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

/// `index.html` with asset URLs pointing at the current [`version`] and `contract` (JSON safe
/// inside a `<script>` element) in its data block.
pub(crate) fn page(contract: &str) -> Asset {
    let raw = Assets::get("index.html")
        .map(|f| f.data)
        .unwrap_or_default();
    let html = with_version(&raw).replace(CONTRACT_PLACEHOLDER, contract);
    Asset::new(Cow::Owned(html.into_bytes()), "text/html; charset=utf-8")
}

/// A file by its path under `/assets/`, or `None`.
pub(crate) fn get(path: &str) -> Option<&'static Asset> {
    FILES.get(path)
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
        let page = page("{}");
        let html = std::str::from_utf8(&page.body).unwrap();
        assert!(!html.contains(VERSION_PLACEHOLDER));
        assert!(!html.contains(CONTRACT_PLACEHOLDER));
        assert!(html.contains(&format!("/assets/app.js?v={}", version())));
        assert!(html.contains(&format!("/assets/app.css?v={}", version())));
    }

    /// The module specifiers of a script: what follows `from '` or `import '`.
    fn imports(script: &str) -> Vec<&str> {
        ["from '", "import '"]
            .iter()
            .flat_map(|lead| script.match_indices(lead).map(|(i, _)| i + lead.len()))
            .filter_map(|start| script[start..].split_once('\'').map(|(spec, _)| spec))
            .collect()
    }

    #[test]
    fn every_module_import_is_versioned_and_names_an_embedded_script() {
        // One URL per module: an unversioned import would load a second copy of a module (its
        // own state) and could mix files of two binaries.
        let names = asset_names();
        let scripts: Vec<&String> = names.iter().filter(|n| n.ends_with(".js")).collect();
        assert!(scripts.len() > 1, "{names:?}");
        let suffix = format!("?v={VERSION_PLACEHOLDER}");
        for name in &scripts {
            let raw = Assets::get(name).unwrap().data;
            let raw = std::str::from_utf8(&raw).unwrap();
            assert!(!raw.contains("import("), "{name}: no dynamic import");
            for spec in imports(raw) {
                let file = spec
                    .strip_prefix("./")
                    .and_then(|s| s.strip_suffix(suffix.as_str()))
                    .unwrap_or_else(|| panic!("{name}: import '{spec}' is not ./<file>{suffix}"));
                assert!(names.iter().any(|n| n == file), "{name}: imports {file}");
            }
            let served = std::str::from_utf8(&get(name).unwrap().body).unwrap();
            assert!(!served.contains(VERSION_PLACEHOLDER), "{name}");
            assert_eq!(imports(served).len(), imports(raw).len(), "{name}");
            for spec in imports(served) {
                assert!(
                    spec.ends_with(&format!(".js?v={}", version())),
                    "{name}: {spec}"
                );
            }
        }
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
