//! Gzip for the destinations that compress (S3 objects, Datadog bodies), run on tokio's
//! blocking pool: compressing megabytes would otherwise hold an async thread for tens of ms.

use std::io::Write as _;

use flate2::write::GzEncoder;

use super::Failure;

/// A gzip encoder writing into memory, sized for text that compresses about 8:1.
pub fn encoder(uncompressed: usize, level: flate2::Compression) -> GzEncoder<Vec<u8>> {
    GzEncoder::new(Vec::with_capacity(uncompressed / 8 + 64), level)
}

/// `parts`, each gzipped.
pub fn gzip_each(parts: &[Vec<u8>], level: flate2::Compression) -> std::io::Result<Vec<Vec<u8>>> {
    parts
        .iter()
        .map(|p| {
            let mut gz = encoder(p.len(), level);
            gz.write_all(p)?;
            gz.finish()
        })
        .collect()
}

/// Runs `work` on the blocking pool; an error (or a panic) is a [`Failure`] naming `what`.
pub async fn off_thread<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Failure> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure {
            reason: format!("{what}: gzip failed: {e}"),
            retry_after: None,
        }),
        Err(e) => Err(Failure {
            reason: format!("{what}: gzip task failed: {e}"),
            retry_after: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[tokio::test]
    async fn parts_round_trip() {
        let parts = vec![b"[1,2]".to_vec(), b"[]".to_vec()];
        let gz = off_thread("t", move || gzip_each(&parts, flate2::Compression::fast()))
            .await
            .unwrap();
        let mut s = String::new();
        flate2::read::GzDecoder::new(&gz[0][..])
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "[1,2]");
        let f = off_thread::<()>("S3 x", || Err(std::io::Error::other("boom")))
            .await
            .unwrap_err();
        assert_eq!(f.reason, "S3 x: gzip failed: boom");
    }
}
